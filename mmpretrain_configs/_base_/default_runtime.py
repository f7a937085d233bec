# mmpretrain's default runtime plus what every training run of this repository
# relies on (docs/configs.md, "Runtime"): a FiniteLossHook that stops the
# run, with the iteration and what to check, on a NaN/inf loss or gradient.
# The exact-resume loops (Resumable*TrainLoop) are named where each config
# writes train_cfg: mmengine refuses a key defined in two sibling bases, and
# train_cfg belongs to the schedule.
_base_ = 'mmpretrain::_base_/default_runtime.py'

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)
custom_hooks = [dict(type='FiniteLossHook', action='stop')]
