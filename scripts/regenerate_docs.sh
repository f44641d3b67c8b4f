#!/usr/bin/env bash
# Remake the docs' tables and figures from the archived runs (bench/runs/): no training, a
# minute or two. Run from the repository root after a change to `alseg report` or `alseg plot`.
set -euo pipefail
cd "$(dirname "$0")/.."
alseg=.venv/bin/alseg
five=$(ls -d bench/runs/camvid_superpixels/* | grep -v _c10_)
ten=$(ls -d bench/runs/camvid_superpixels/*_c10_*)
long=bench/runs/camvid_long_reference/full_supervision_long_seed0
$alseg report bench/runs/label_efficiency --cost clicks -o docs/results/camvid_label_efficiency_clicks
$alseg report bench/runs/label_efficiency --cost pixels -o docs/results/camvid_label_efficiency_pixels
$alseg report bench/runs/label_efficiency --cost images -o docs/results/camvid_label_efficiency_images
$alseg plot bench/runs/label_efficiency --cost clicks -o docs/results/camvid_label_efficiency_clicks.png
$alseg plot bench/runs/label_efficiency --cost pixels -o docs/results/camvid_label_efficiency_pixels.png
$alseg report bench/runs/label_efficiency $five --cost clicks -o docs/results/camvid_superpixels_clicks
$alseg plot bench/runs/label_efficiency $(echo "$five" | grep _sp_) --cost clicks --log-cost \
  --size 9,5 -o docs/results/camvid_superpixels_clicks.png
$alseg plot bench/runs/label_efficiency/random_seed* bench/runs/label_efficiency/full_supervision_seed0 \
  bench/runs/camvid_superpixels/*sp300* bench/runs/camvid_superpixels/random_sp_dominant_seed[0-9] \
  --cost clicks -o docs/results/camvid_superpixels300_clicks.png
$alseg report bench/runs/label_efficiency/random_seed* bench/runs/label_efficiency/full_supervision_seed0 \
  $(echo "$five" | grep -v /random_) --cost clicks -o docs/results/camvid_superpixels_vs_random_images
$alseg report $five --split val --cost clicks -o docs/results/camvid_superpixels_val
$alseg plot $long $ten --cost clicks --split val -o docs/results/camvid_superpixels_c10_val.png
$alseg plot $long $ten --cost clicks -o docs/results/camvid_superpixels_c10_clicks.png
$alseg report bench/runs/isic_cpu --metric dice -o docs/results/isic2017_cpu_dice
$alseg plot bench/runs/isic_cpu --metric dice -o docs/results/isic2017_cpu_dice.png
$alseg report bench/runs/synthetic -o docs/results/synthetic_strategies
$alseg report bench/runs/synthetic --cost clicks -o docs/results/synthetic_strategies_clicks
$alseg plot bench/runs/synthetic -o docs/results/synthetic_strategies.png
$alseg report bench/runs/camvid_lite0 --cost clicks -o docs/results/camvid_lite0_clicks
$alseg report bench/runs/camvid_lite0 --cost clicks --split val -o docs/results/camvid_lite0_val
$alseg plot bench/runs/camvid_lite0 --cost clicks -o docs/results/camvid_lite0_clicks.png \
  --title "CamVid, pretrained Lite0 U-Net: test mIoU vs clicks"
$alseg plot bench/runs/camvid_lite0 --cost clicks --split val -o docs/results/camvid_lite0_val.png \
  --title "CamVid, pretrained Lite0 U-Net: val mIoU vs clicks"
