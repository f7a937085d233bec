# The main job's LoMaR pretraining:
# lomar_vit-tiny-p8_1xb32-20e_synthetic.py
# (same model, data, batch, optimizer) trained for a 2-minute wall-clock
# budget instead of 20 epochs (../_base_/time_budget_run.py; change it with
# --cfg-options custom_hooks.1.budget_s=SECONDS).
_base_ = [
    './lomar_vit-tiny-p8_1xb32-20e_synthetic.py',
    '../_base_/time_budget_run.py'
]

train_dataloader = dict(sampler=_base_.time_budget_run.sampler)
train_cfg = _base_.time_budget_run.train_cfg
param_scheduler = _base_.time_budget_run.param_scheduler
log_processor = _base_.time_budget_run.log_processor
default_hooks = _base_.time_budget_run.default_hooks
custom_hooks = _base_.time_budget_run.custom_hooks
