#!/usr/bin/env bash
# Stands in for the Python interpreter in the pickup benchmark and the fleet benchmark's queue-only arm: answers at
# once with a valid start, one step and done, so the figure is the queue and the runner, not training.
echo '{"v":1,"type":"start","model_name":"bench_quick_test_20260101_0000","output_dir":"/tmp/bench","profile":"quick_test","base_model":"tiny","backend":"cpu","max_steps":1,"dataset_examples":1,"dataset_requested":1,"lora_r":8,"scheduler":"linear","resumed_from_step":null}'
echo '{"v":1,"type":"step","step":1,"max_steps":1,"loss":0.5,"learning_rate":0.001,"epoch":1,"elapsed_s":0.01}'
echo '{"v":1,"type":"done","model_name":"bench_quick_test_20260101_0000","output_dir":"/tmp/bench","final_loss":0.5,"band":"optimal","steps":1,"epochs":1,"duration_s":0,"latest":false}'
