"""Reports: what the notebooks show and how they are run.

notebooks          `streid notebooks run`: papermill execution, HTML, merged metrics, index.html
demo               `streid demo`: SynthDance -> baseline -> ST-ReIDNet -> evaluation, as a report
demo_index         the top of the demo's index.html: headline R1/mAP and pose-transfer tables, the gallery
transfer_report    pose transfer measured on a run's checkpoint (cached beside it), shown in notebooks
                   03/04/05, and G's metrics as TensorBoard scalars
training_runs      reuse_or_train: a training run with hooks, or the finished one reused (notebooks 02, 03)
default_runs       the smoke-size runs notebook 05 falls back on
live_plot          training hooks: loss/metric curves redrawn while training; generator panels per epoch
tensorboard_logs   scalars and images read back from a run's TensorBoard events
dataset_stats      split sizes, identities per video, keypoint completeness (notebook 01)
dataset_figures    figures of those, and ST-ReIDNet's pose inputs
color_report       the colour-histogram baseline with its distance matrix
evaluation_report  several checkpoints x protocols x AP conventions from cached features (05)
notebook_data      datasets generated on first use
notebook_output    figures and tables shown in a notebook (and saved)

Figures that only draw what they are given (CMC curves, ranked lists, feature maps) are in
streid_core.viz.
"""
