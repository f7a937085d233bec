"""The main job: the README's first command (``make main``).

From nothing to a results table on the built-in data, on a CPU: the data,
LoMaR / LocalMIM / MAE pretraining (timed), reconstructions, the transfer of
each and of a random initialisation to the tiny Mask R-CNN and UperNet,
curves, and the table with a plain verdict.

    python tools/main_job.py [--work-dir work_dirs/main] [--data data]
        [--methods lomar localmim mae scratch] [--pretrain-epochs N]

Every step prints its number, its time and an estimate of what is left; see
``--help``, docs/tools.md and :mod:`mim_pretrain.apis.main_job`, where the
steps live.
"""
import sys

from mim_pretrain.apis import main_job_main

if __name__ == '__main__':
    sys.exit(main_job_main())
