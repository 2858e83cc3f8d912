#!/usr/bin/env bash
# Packs what a GPU host without network needs to run the bot and the runner, into the git-ignored .gpu-carry/:
# this machine's Node binary (xz), the production npm packages (npm ci --omit=dev, xz) and redis-server with the
# shared libraries it links beyond glibc. Run from the repository root on an x86-64 Linux host with Node 20 and
# redis-server; ~37 MB. There (the device tool's carry: .gpu-carry and .whl/pack), before anything else:
#
#   xz -dc .gpu-carry/node.xz > /usr/local/bin/node && chmod +x /usr/local/bin/node
#   tar xJf .gpu-carry/node_modules.tar.xz
#   printf '#!/bin/sh\nLD_LIBRARY_PATH=%s/.gpu-carry/redis/lib exec %s/.gpu-carry/redis/redis-server "$@"\n' \
#     "$PWD" "$PWD" > /usr/local/bin/redis-server && chmod +x /usr/local/bin/redis-server
set -euo pipefail
grep -qx '/.gpu-carry/' .git/info/exclude || echo '/.gpu-carry/' >> .git/info/exclude
rm -rf .gpu-carry && mkdir -p .gpu-carry/redis/lib
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > .gpu-carry/node.xz
stage=$(mktemp -d)
cp package.json package-lock.json "$stage/"
(cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --silent)
tar cf - -C "$stage" node_modules | xz -T0 -6 > .gpu-carry/node_modules.tar.xz
rm -rf "$stage"
server=$(readlink -f "$(command -v redis-server)")
cp "$server" .gpu-carry/redis/redis-server
ldd "$server" | awk '/=> \// {print $3}' | grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so' \
  | xargs -I{} cp -L {} .gpu-carry/redis/lib/
du -sh .gpu-carry
