/**
 * Every chat platform the bot can serve, in one table: when its settings name it, `src/main.ts` starts it. A new
 * platform is a folder here with its adapter, and one row below.
 */
import type { Bot } from '../bot/bot.ts';
import type { ChatPlatform } from '../bot/surface.ts';
import type { Config } from '../shared/config.ts';
import { DiscordChat } from './discord/index.ts';
import { SlackChat } from './slack/index.ts';

const PLATFORMS: ((bot: Bot, config: Config) => ChatPlatform | undefined)[] = [
  (bot, { discord }) => discord && new DiscordChat({ bot, ...discord }),
  (bot, { slack }) => slack && new SlackChat({ bot, ...slack }),
];

/** The platforms the settings name, each started; none when no platform is set up (the console then). */
export async function startPlatforms(bot: Bot, config: Config): Promise<ChatPlatform[]> {
  const started: ChatPlatform[] = [];
  for (const make of PLATFORMS) {
    const platform = make(bot, config);
    if (!platform) continue;
    await platform.start();
    started.push(platform);
  }
  return started;
}
