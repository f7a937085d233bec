"""Entry points of the command-line tools."""
from .run import (build_test_parser, build_train_parser, setup_test_config,
                  setup_train_config, task_of, test_main, train_main)

__all__ = [
    'build_train_parser', 'build_test_parser', 'setup_train_config',
    'setup_test_config', 'task_of', 'train_main', 'test_main'
]
