"""Entry points of the command-line tools, and the steps of the pretrain ->
transfer -> results pipeline as functions."""
from .data import build_generate_parser, generate_data_main
from .inference import (ClassificationInferencer, DetectionInferencer,
                        ReconstructionInferencer, SegmentationInferencer,
                        build_demo_parser, check_images, demo_main,
                        init_inferencer)
from .main_job import (BUDGET_CONFIGS, PRETRAIN, build_main_job_parser,
                       main_job_main)
from .pictures import (build_plot_parser, contact_sheet, find_scalars,
                       plot_logs_main, plot_runs, read_scalars)
from .pipeline import (METHOD_NAMES, METHODS, batch_per_gpu, checkpoint_layout,
                       config_of, convert_weights, data_options,
                       extract_weights, last_checkpoint, launch_command,
                       read_budget_points, read_test_metrics, run_command)
from .reconstruction import (build_reconstruction_parser,
                             visualize_reconstruction_main)
from .results import (build_collect_parser, collect_main, collect_run,
                      markdown_table, read_metrics, summary_row, summary_table,
                      verdict, write_summary)
from .run import (build_test_parser, build_train_parser, setup_test_config,
                  setup_train_config, task_of, test_main, train_main)
from .schedules import (budget_options, epoch_options, find_scheduler,
                        transfer_options)
from .transfer import build_transfer_parser, transfer_main
from .transfer_check import (build_check_parser, carries, check_transfer,
                             check_transfer_main, fine_tune_losses,
                             reverse_blocks)
from .weights import (build_convert_parser, build_extract_parser,
                      convert_checkpoint_main, extract_weights_main)

__all__ = [
    'build_train_parser', 'build_test_parser', 'setup_train_config',
    'setup_test_config', 'task_of', 'train_main', 'test_main',
    'METHODS', 'METHOD_NAMES', 'config_of', 'data_options',
    'checkpoint_layout', 'batch_per_gpu', 'extract_weights',
    'convert_weights', 'launch_command', 'run_command', 'last_checkpoint',
    'read_test_metrics', 'read_budget_points', 'find_scheduler',
    'epoch_options', 'budget_options',
    'transfer_options', 'build_transfer_parser', 'transfer_main',
    'read_metrics', 'collect_run', 'markdown_table', 'build_collect_parser',
    'collect_main', 'summary_row', 'summary_table', 'verdict',
    'write_summary', 'find_scalars', 'read_scalars', 'plot_runs',
    'build_plot_parser', 'plot_logs_main', 'contact_sheet', 'PRETRAIN',
    'BUDGET_CONFIGS',
    'build_main_job_parser', 'main_job_main', 'build_extract_parser',
    'extract_weights_main', 'build_convert_parser', 'convert_checkpoint_main',
    'build_reconstruction_parser', 'visualize_reconstruction_main',
    'build_generate_parser', 'generate_data_main', 'init_inferencer',
    'DetectionInferencer', 'SegmentationInferencer',
    'ClassificationInferencer',
    'ReconstructionInferencer', 'check_images', 'build_demo_parser',
    'demo_main', 'check_transfer', 'fine_tune_losses', 'reverse_blocks',
    'carries', 'build_check_parser', 'check_transfer_main'
]
