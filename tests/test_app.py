"The demo web app: its logic, its HTTP API on loopback, and the page driven by a real headless Chromium."
import base64, io, json, os, shutil, tempfile, urllib.error, urllib.request
from pathlib import Path
import numpy as np
import pytest
import torch

from unimd.core import UniMDError
from unimd.app import DemoApp, serve, launch, list_sources, safe_name, parse_query_lines, render_page, cli_app
from unimd.predictor import Predictor
from unimd.features import save_features
from unimd.config import update_config
from unimd.train import train
from unimd.demo import demo_config
from unimd.synthetic import make_world

CHROMIUM, CHROMEDRIVER = shutil.which('chromium') or '/usr/bin/chromium', shutil.which('chromedriver') or '/usr/bin/chromedriver'


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "A tiny checkpoint (a few training steps on a tiny SYNTHETIC world) and a data folder of two feature files."
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp('app')
    cfg = update_config(demo_config(quick=True), {'data': {'synthetic': dict(n_train=24, n_test=6, n_classes=6)},
                                                  'model': dict(channels=16, reg_mlp_hidden=16, fpn_layers=1),
                                                  'train': dict(warmup_epochs=1, epochs=1, batch_size=4, eval_epochs=[])})
    torch.manual_seed(0)
    train(cfg, d / 'run', progress=False, stop_after=3)
    world = make_world(cfg.data.synthetic)
    vids = list(world.videos)[:2]
    for v in vids: save_features(d / 'feats', v, world.features(v))
    return d, world, vids


@pytest.fixture(scope='module')
def running(setup):
    d, world, vids = setup
    server, url, app = launch(d / 'run' / 'checkpoint.pt', d / 'feats', port=0, device='cpu')
    yield url, app
    server.shutdown(); server.server_close(); shutil.rmtree(app.upload_dir, ignore_errors=True)


def call(url, path, data=None, ctype='application/json'):
    req = urllib.request.Request(url + path.lstrip('/'), data=data, headers={'Content-Type': ctype} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=120) as r: return r.status, r.read()
    except urllib.error.HTTPError as e: return e.code, e.read()


def test_listens_on_loopback_only(running):
    url, _ = running
    assert url.startswith('http://127.0.0.1:')


def test_sources_and_names(tmp_path):
    (tmp_path / 'd' / 'x').mkdir(parents=True); (tmp_path / 'u').mkdir()
    for f in ['a.npy', 'x/b.mkv', 'c.txt']: (tmp_path / 'd' / f).write_bytes(b'')
    (tmp_path / 'u' / 'v.pt').write_bytes(b''); (tmp_path / 'u' / '.up.1.tmp').write_bytes(b'')
    assert list(list_sources(tmp_path / 'd', tmp_path / 'u')) == ['a.npy', 'x/b.mkv', 'upload/v.pt']
    assert safe_name('../../a b.npy') == 'a_b.npy' and safe_name('') == 'file'
    assert parse_query_lines('a\n\n b \n') == ['a', 'b'] and parse_query_lines(['a']) == ['a']
    with pytest.raises(UniMDError, match='no queries'): parse_query_lines(' \n')


def test_api_detect(running, setup):
    url, app = running
    _, world, vids = setup
    code, body = call(url, '/api/info')
    info = json.loads(body)
    assert code == 200 and info['sources'] == [f'{v}.npy' for v in vids] and info['classes'] == world.classes
    q = f'{world.classes[0]}\nsomeone opens the door'
    code, body = call(url, '/api/detect', json.dumps(dict(source=f'{vids[0]}.npy', queries=q, top_k=3)).encode())
    r = json.loads(body)
    assert code == 200 and [x['task'] for x in r['rows']] == ['tad'] * 3 + ['mr'] * 3
    assert base64.b64decode(r['png'])[:4] == b'\x89PNG' and r['source'] == f'{vids[0]}.npy'
    assert all(0 <= x['start'] <= x['end'] <= r['duration'] for x in r['rows'])


def test_api_errors(running, setup):
    url, app = running
    _, world, vids = setup
    bad = [(dict(source=f'{vids[0]}.npy', queries='  '), 'no queries'),
           (dict(source='../../../etc/passwd', queries='x'), 'not one of the files'),
           (dict(source=str(Path(app.data_dir) / f'{vids[0]}.npy'), queries='x'), 'not one of the files'),
           (dict(source=f'{vids[0]}.npy', queries='x', top_k=1000), 'top-k')]
    for body, msg in bad:
        code, out = call(url, '/api/detect', json.dumps(body).encode())
        assert code == 400 and msg in json.loads(out)['error']
    code, out = call(url, '/api/detect', b'{not json')
    assert code == 400 and 'not JSON' in json.loads(out)['error']
    assert call(url, '/nope')[0] == 404 and call(url, '/api/nope', b'')[0] == 404


def test_api_upload(running, setup):
    url, app = running
    _, world, vids = setup
    buf = io.BytesIO(); np.save(buf, world.features(vids[1]))
    code, out = call(url, '/api/upload?name=' + urllib.request.quote('../my clip.npy'), buf.getvalue(), 'application/octet-stream')
    assert code == 200 and json.loads(out)['source'] == 'upload/my_clip.npy'
    code, out = call(url, '/api/detect', json.dumps(dict(source='upload/my_clip.npy', queries=world.classes[1], top_k=2)).encode())
    assert code == 200 and len(json.loads(out)['rows']) == 2
    for name, data, msg in [('x.exe', b'abc', 'not a feature file'), ('e.npy', b'', 'is empty')]:
        code, out = call(url, f'/api/upload?name={name}', data, 'application/octet-stream')
        assert code == 400 and msg in json.loads(out)['error']
    code, out = call(url, '/api/upload?name=bad.npy', b'garbage', 'application/octet-stream')   # stored, fails on use
    code, out = call(url, '/api/detect', json.dumps(dict(source='upload/bad.npy', queries='x')).encode())
    assert code == 400 and 'bad.npy' in json.loads(out)['error']
    assert sorted(os.listdir(app.upload_dir)) == ['bad.npy', 'my_clip.npy']                   # no temporary files left


def test_upload_limit_leaves_nothing(setup, tmp_path):
    d, world, vids = setup
    app = DemoApp(Predictor.from_checkpoint(d / 'run' / 'checkpoint.pt', device='cpu'), None, tmp_path / 'u', max_upload_mb=0.001)
    with pytest.raises(UniMDError, match='over the'): app.save_upload('big.npy', io.BytesIO(b'0' * 5000), 5000)
    with pytest.raises(UniMDError, match='stopped after 3 of 10'): app.save_upload('cut.npy', io.BytesIO(b'abc'), 10)
    assert os.listdir(tmp_path / 'u') == []
    with pytest.raises(UniMDError, match='is not a folder'): DemoApp(app.predictor, tmp_path / 'missing')


def test_page_escapes_names(setup, tmp_path):
    d, world, vids = setup
    (tmp_path / 'f').mkdir(); save_features(tmp_path / 'f', '<b>x', world.features(vids[0]))
    page = render_page(DemoApp(Predictor.from_checkpoint(d / 'run' / 'checkpoint.pt', device='cpu'), tmp_path / 'f', tmp_path / 'u'))
    assert '&lt;b&gt;x.npy' in page and '<b>x' not in page


def test_cli_bad_checkpoint(tmp_path):
    with pytest.raises(UniMDError, match='not found'): cli_app(['--checkpoint', str(tmp_path / 'none.pt')])


# ---------------------------------------------------------------- the page in a real browser (headless Chromium)

def browser_or_skip(tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.skip('Chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver)')
    webdriver = pytest.importorskip('selenium.webdriver', reason='Selenium is not installed (pip install selenium)')
    from selenium.webdriver.chrome.service import Service
    os.environ.setdefault('SE_OFFLINE', 'true')                  # never let Selenium Manager download anything
    o = webdriver.ChromeOptions()
    o.binary_location = CHROMIUM
    for a in ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', f'--user-data-dir={tmp_path / "profile"}',
              '--window-size=1280,1000']:
        o.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)


def test_page_in_headless_chromium(running, setup, tmp_path):
    url, app = running
    _, world, vids = setup
    from_ = browser_or_skip(tmp_path)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait, Select
    b = from_
    try:
        b.get(url)
        assert 'UniMD' in b.title
        el = lambda i: b.find_element(By.ID, i)
        wait = WebDriverWait(b, 120)
        Select(el('source')).select_by_value(f'{vids[1]}.npy')
        b.find_elements(By.CLASS_NAME, 'chip')[0].click()                              # a TAD class, by clicking it
        el('queries').send_keys('\na person opens the door')
        el('topk').clear(); el('topk').send_keys('2')
        el('run').click()
        wait.until(lambda _: 'moments in' in el('status').text or el('error').text)
        assert el('error').text == ''
        rows = [[td.text for td in tr.find_elements(By.TAG_NAME, 'td')] for tr in el('results').find_elements(By.CSS_SELECTOR, 'tbody tr')]
        assert [r[0] for r in rows] == [world.classes[0]] * 2 + ['a person opens the door'] * 2
        assert [r[1] for r in rows] == ['TAD', 'TAD', 'MR', 'MR'] and [r[2] for r in rows] == ['1', '2', '1', '2']
        assert b.execute_script("return document.getElementById('timeline').naturalWidth") > 100
        # an empty query set: the server's message, in the page
        el('queries').clear(); el('run').click()
        wait.until(lambda _: el('error').text)
        assert 'no queries' in el('error').text
        # upload a feature file through the file picker
        buf = tmp_path / 'picked.npy'; np.save(buf, world.features(vids[0]))
        el('file').send_keys(str(buf))
        el('queries').send_keys(world.classes[1]); el('run').click()
        wait.until(lambda _: 'upload/picked.npy' in el('status').text or el('error').text)
        assert el('error').text == '' and Select(el('source')).first_selected_option.get_attribute('value') == 'upload/picked.npy'
        assert len(el('results').find_elements(By.CSS_SELECTOR, 'tbody tr')) == 2
    finally:
        b.quit()


# ---------------------------------------------------------------- a video: the player beside the timeline, click to seek

def moving_square(n=240, h=64, w=96):
    "n frames [n, h, w, 3]: a red square crossing a blue background, left to right."
    f = np.zeros((n, h, w, 3), np.uint8); f[..., 2] = 120
    for k in range(n):
        x = int((w - 16) * k / max(n - 1, 1)); f[k, 24:40, x:x + 16] = (230, 30, 30)
    return f


@pytest.fixture(scope='module')
def video_running(tmp_path_factory):
    "A 512-d model (a few steps on a SYNTHETIC world), a random-weight CLIP extractor, and a served folder with one 10 s video."
    from unimd.extract import ClipImageEncoder, make_test_video
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp('video')
    cfg = update_config(demo_config(quick=True), {'data': {'synthetic': dict(n_train=12, n_test=4, n_classes=4, feat_dim=512)},
                                                  'model': dict(feat_dim=512, channels=16, reg_mlp_hidden=16, fpn_layers=1),
                                                  'train': dict(warmup_epochs=1, epochs=1, batch_size=4, eval_epochs=[])})
    torch.manual_seed(0)
    train(cfg, d / 'run', progress=False, stop_after=2)
    make_test_video(d / 'videos' / 'square.webm', moving_square(), fps=24, codec='libvpx')
    enc = ClipImageEncoder(pretrained=None, device='cpu')                  # random weights: offline, 512-d like ViT-B/32's
    app = DemoApp(Predictor.from_checkpoint(d / 'run' / 'checkpoint.pt', device='cpu', extractor=enc), d / 'videos', d / 'up')
    server, url = serve(app, port=0)
    yield url, app, make_world(cfg.data.synthetic)
    server.shutdown(); server.server_close()


def test_api_video_has_media_with_ranges(video_running):
    url, app, world = video_running
    code, body = call(url, '/api/detect', json.dumps(dict(source='square.webm', queries=world.classes[0], top_k=2)).encode())
    r = json.loads(body)
    assert code == 200 and r['media'] == '/media/square.webm' and 9.9 < r['duration'] < 10.1 and len(r['rows']) == 2
    whole = (Path(app.data_dir) / 'square.webm').read_bytes()
    req = urllib.request.Request(url + 'media/square.webm', headers={'Range': 'bytes=1000-'})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 206 and resp.read() == whole[1000:]
        assert resp.headers['Content-Range'] == f'bytes 1000-{len(whole) - 1}/{len(whole)}'
    feats = json.loads(call(url, '/api/info')[1])
    assert feats['sources'] == ['square.webm']
    code, out = call(url, '/api/upload?name=mine.webm', whole, 'application/octet-stream')          # an uploaded video plays too
    assert code == 200 and json.loads(out)['source'] == 'upload/mine.webm'
    code, body = call(url, '/api/detect', json.dumps(dict(source='upload/mine.webm', queries=world.classes[0], top_k=1)).encode())
    assert code == 200 and json.loads(body)['media'] == '/media/upload/mine.webm'
    req = urllib.request.Request(url + 'media/upload/mine.webm', headers={'Range': 'bytes=-100'})
    with urllib.request.urlopen(req, timeout=30) as resp: assert resp.status == 206 and resp.read() == whole[-100:]


def test_click_seeks_the_player_in_headless_chromium(video_running, tmp_path):
    url, app, world = video_running
    b = browser_or_skip(tmp_path)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait, Select
    try:
        b.get(url)
        el = lambda i: b.find_element(By.ID, i)
        wait = WebDriverWait(b, 120)
        assert not el('player').is_displayed()                                   # nothing to play yet
        Select(el('source')).select_by_value('square.webm')
        el('queries').send_keys(f'{world.classes[1]}\nthe red square moves right')
        el('topk').clear(); el('topk').send_keys('3')
        el('run').click()
        wait.until(lambda _: 'moments in' in el('status').text or el('error').text)
        assert el('error').text == '' and el('player').is_displayed()
        wait.until(lambda _: b.execute_script("return document.getElementById('player').readyState") >= 1)
        assert abs(b.execute_script("return document.getElementById('player').duration") - 10) < 0.1
        rows = b.find_elements(By.CSS_SELECTOR, '#results tbody tr.moment')
        assert len(rows) == 6
        for row in (rows[4], rows[1]):                                            # a later moment, then an earlier one
            start = float(row.get_attribute('data-start'))
            row.click()
            wait.until(lambda _: b.execute_script("const p = document.getElementById('player'); return !p.seeking && "
                                                  f"Math.abs(p.currentTime - {start}) < 1e-3"))
            assert 'playing' in row.get_attribute('class') and f'{start:.2f}' in el('now').text
        assert b.execute_script("return document.getElementById('player').paused")        # seeking does not start playback
    finally:
        b.quit()
