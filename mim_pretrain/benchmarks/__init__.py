"""The benchmarks behind ``tools/benchmarks/*.py`` and docs/benchmarks.md.

One module a tool, each with its ``main(argv)``:

* :mod:`.pretrain_speed`: pretraining cost of LoMaR, LocalMIM and MAE;
* :mod:`.transfer_speed`: Mask R-CNN and UperNet cost against OpenMMLab's
  reference backbones;
* :mod:`.gpu_check`: the one-command GPU check (``cli`` exits with its
  status);
* :mod:`.swin_modes`: LocalMIM-Swin's efficient against its simple mode;
* :mod:`.flops`: parameters and FLOPs of any config in the model zoos'
  convention (``tools/analysis/get_flops.py``);
* :mod:`.data_checks`: the cost of the data checks on a COCO-sized
  annotation file;

and :mod:`.common`, what they share (machine record, timing, peak memory,
FLOP counting, output files). The submodules are imported on demand, so
that importing this package costs nothing.
"""
