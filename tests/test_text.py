"Text encoders: disk cache of embeddings, MiniLM offline default, CLIP loading and its offline failure."
import os
import pytest
import torch
from unimd.core import UniMDError
from unimd.text import (EmbeddingCache, TextEncoder, MiniLMEncoder, ClipTextEncoder, get_text_encoder,
                        proposal_embedding)


class CountingEncoder(TextEncoder):
    "A deterministic toy encoder: embedding = character histogram."
    name, dim = 'counting', 26
    def _embed(self, texts):
        return torch.stack([torch.bincount(torch.tensor([ord(c) - 97 for c in t.lower() if c.isalpha()] or [0]),
                                           minlength=26)[:26].float() for t in texts])


def test_cache_hits_skip_the_encoder_across_instances(tmp_path):
    enc = CountingEncoder(cache_dir=tmp_path)
    a = enc.encode(['open door', 'sit', 'open door'])
    assert enc.n_computed == 2 and a.shape == (3, 26)
    assert torch.allclose(a.norm(dim=-1), torch.ones(3))
    again = CountingEncoder(cache_dir=tmp_path)
    assert torch.equal(again.encode(['sit', 'open door']), a[[1, 0]]) and again.n_computed == 0
    assert (tmp_path / 'text' / 'counting.pt').exists()
    assert [p.name for p in (tmp_path / 'text').iterdir()] == ['counting.pt']


def test_cache_disabled_and_damaged(tmp_path):
    enc = CountingEncoder(cache_dir=False)
    enc.encode(['a']); enc.encode(['a'])
    assert enc.n_computed == 2
    (tmp_path / 'text').mkdir()
    (tmp_path / 'text' / 'counting.pt').write_bytes(b'not a torch file')
    with pytest.warns(UserWarning, match='unreadable embedding cache'):
        enc = CountingEncoder(cache_dir=tmp_path)
    enc.encode(['b'])
    assert len(EmbeddingCache(tmp_path / 'text' / 'counting.pt')) == 1


def test_empty_text_is_an_error(tmp_path):
    with pytest.raises(UniMDError, match='text #1'): CountingEncoder(cache_dir=tmp_path).encode(['ok', ' '])


def test_minilm_similarity_and_width(tmp_path):
    enc = MiniLMEncoder(cache_dir=tmp_path)
    g = enc.encode(['a man is playing a guitar', 'someone plays the guitar', 'a chef chops onions in a kitchen'])
    assert g.shape == (3, 384)
    assert g[0] @ g[1] > g[0] @ g[2] + 0.3


def test_clip_random_tower_and_offline_failure(tmp_path, monkeypatch):
    enc = get_text_encoder('clip-random')
    g = enc.encode(['open a door'])
    assert g.shape == (1, 512) and torch.allclose(g.norm(dim=-1), torch.ones(1))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path))
    monkeypatch.delenv('HF_HUB_CACHE', raising=False)
    with pytest.raises(UniMDError, match='HF_HUB_OFFLINE=1 forbids downloading'):
        ClipTextEncoder(pretrained='openai', cache_dir=tmp_path)
    with pytest.raises(UniMDError, match='not found'): ClipTextEncoder(pretrained=str(tmp_path / 'none.bin'))


def test_get_text_encoder_and_proposal_query(tmp_path):
    with pytest.raises(UniMDError, match='unknown text encoder'): get_text_encoder('word2vec')
    enc = CountingEncoder(cache_dir=tmp_path)
    p = proposal_embedding(enc, ['abc', 'xyz'])
    assert torch.allclose(p, enc.encode(['abc', 'xyz']).mean(0))
    with pytest.raises(UniMDError): proposal_embedding(enc, [])
