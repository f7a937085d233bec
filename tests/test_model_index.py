"""model-index.yml and the metafiles: every full-size config listed once,
every listed config present, names unique, the files in OpenMMLab's
format."""
import glob
import os.path as osp

import pytest
import yaml

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG_DIRS = ('mmpretrain_configs', 'mmdet_configs', 'mmseg_configs')


def is_zoo_config(rel: str) -> bool:
    """Full-size configs: not a base, not a tiny / synthetic or stack-check
    run."""
    parts = rel.split('/')
    name = parts[-1]
    return ('_base_' not in parts and 'stack_check' not in parts
            and 'synthetic' not in name and '-tiny' not in name
            and '_tiny' not in name)


def zoo_configs() -> list:
    return sorted(
        osp.relpath(p, REPO) for d in CONFIG_DIRS
        for p in glob.glob(osp.join(REPO, d, '**', '*.py'), recursive=True)
        if is_zoo_config(osp.relpath(p, REPO)))


def load(rel: str) -> dict:
    with open(osp.join(REPO, rel)) as f:
        return yaml.safe_load(f)


@pytest.fixture(scope='module')
def index() -> dict:
    """metafile path -> its loaded content, from model-index.yml."""
    imports = load('model-index.yml')['Import']
    assert len(imports) == len(set(imports))
    return {rel: load(rel) for rel in imports}


def models(index: dict) -> list:
    return [m for meta in index.values() for m in meta['Models']]


def test_every_metafile_is_imported(index):
    found = sorted(
        osp.relpath(p, REPO) for d in CONFIG_DIRS
        for p in glob.glob(osp.join(REPO, d, '**', 'metafile.yml'),
                           recursive=True))
    assert found and found == sorted(index)


def test_every_zoo_config_is_listed_exactly_once(index):
    listed = [m['Config'] for m in models(index)]
    twice = sorted({c for c in listed if listed.count(c) > 1})
    assert not twice, f'listed more than once: {twice}'
    missing = sorted(set(zoo_configs()) - set(listed))
    assert not missing, f'full-size configs missing from the index: {missing}'


def test_every_listed_config_exists_and_is_full_size(index):
    for m in models(index):
        assert osp.isfile(osp.join(REPO, m['Config'])), m['Config']
        assert is_zoo_config(m['Config']), m['Config']


def test_names_unique_and_collections_known(index):
    names = [m['Name'] for m in models(index)]
    assert len(names) == len(set(names))
    collections = [c['Name'] for meta in index.values()
                   for c in meta['Collections']]
    assert len(collections) == len(set(collections))
    for m in models(index):
        assert m['In Collection'] in collections, m['Name']
        assert m['Name'] == osp.basename(m['Config'])[:-3]


def test_openmmlab_fields(index):
    for meta in index.values():
        for c in meta['Collections']:
            assert c['Paper']['Title'] and c['Paper']['URL'].startswith(
                'https://')
            assert c['Code']['URL'].startswith('https://')
    for m in models(index):
        md = m['Metadata']
        for key in ('Batch Size', 'FLOPs', 'Parameters', 'Training Data'):
            assert md.get(key), f"{m['Name']}: Metadata.{key}"
        assert md.get('Epochs') or md.get('Iterations'), m['Name']
        # nothing is measured yet: no measured results, no weights
        assert m['Results'] is None and 'Weights' not in m, m['Name']
        for r in m.get('Paper Results') or []:
            assert r['Task'] and r['Dataset'] and r['Metrics']
            assert r['Source'], m['Name']


def test_flops_are_those_of_get_flops(index):
    """One entry per kind recounted by the tool (the cheap ones)."""
    from mim_pretrain.benchmarks.flops import analyze
    by_config = {m['Config']: m for m in models(index)}
    for rel in ('mmpretrain_configs/mae/'
                'mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py', ):
        rows = analyze(osp.join(REPO, rel))['rows']
        md = by_config[rel]['Metadata']
        assert md['FLOPs'] == rows[0]['flops']
        assert md['Pretraining FLOPs'] == rows[1]['flops']
        assert md['Parameters'] == rows[1]['params']
