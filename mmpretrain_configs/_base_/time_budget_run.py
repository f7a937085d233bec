# What the main job's pretraining runs share: the tiny configs' run
# (synthetic_run.py) for a wall-clock budget instead of 20 epochs, so that
# methods whose iterations cost different amounts are compared at equal
# time. An iteration-based loop whose max_iters is only a bound; 20 warm-up
# iterations (LinearLR), on which TimeBudgetHook measures the speed, then a
# cosine to 0 that the hook fits to end when its `budget_s` (120 s) is
# spent; checkpoints at a third and two thirds of the run and at its end,
# each listed with its training time in budget_points.json
# (mim_pretrain/engine/budget.py).
#
# As synthetic_run.py, everything is under one key: a config assigns each
# entry itself, e.g. `train_cfg = _base_.time_budget_run.train_cfg`.
time_budget_run = dict(
    # mmengine's iteration loop sleeps 2 s each time a finite sampler runs
    # out (once per epoch); an infinite one never does
    sampler=dict(type='InfiniteSampler', shuffle=True),
    train_cfg=dict(
        _delete_=True,
        type='ResumableIterBasedTrainLoop',
        max_iters=100000),
    param_scheduler=[
        dict(
            type='LinearLR',
            start_factor=1e-3,
            by_epoch=False,
            begin=0,
            end=20),
        dict(
            type='CosineAnnealingLR',
            T_max=100000 - 20,
            eta_min=0.,
            by_epoch=False,
            begin=20,
            end=100000)
    ],
    log_processor=dict(by_epoch=False),
    default_hooks=dict(
        logger=dict(interval=10),
        checkpoint=dict(
            by_epoch=False, interval=100000, max_keep_ckpts=1,
            save_last=True)),
    custom_hooks=[
        dict(type='FiniteLossHook', action='stop'),
        dict(type='TimeBudgetHook', budget_s=120,
             save_fractions=(1 / 3, 2 / 3))
    ])
