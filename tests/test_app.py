"The demo web app (Gradio): its logic, the guard in front of it (Host, Origin, sizes), the Space, and the page in headless Chromium."
import io, json, os, shutil, signal, socket, struct, subprocess, sys, time, urllib.error, urllib.request
from pathlib import Path
import numpy as np
import pytest
import torch

from unimd.core import UniMDError
from unimd.app import (DemoApp, launch, serve, stop, list_sources, safe_name, parse_query_lines, add_upload, refusal, cli_app,
                       MAX_QUERIES, MAX_PLOTTED)
from unimd.predictor import Predictor
from unimd.features import save_features
from unimd.config import update_config
from unimd.train import train
from unimd.demo import demo_config
from unimd.synthetic import make_world

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, CHROMEDRIVER = shutil.which('chromium') or '/usr/bin/chromium', shutil.which('chromedriver') or '/usr/bin/chromedriver'
pytest.importorskip('gradio', reason="the app needs Gradio: pip install 'unimd[app]'")


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
    (d / 'secret.npy').write_bytes(b'not offered')                    # outside --data: a link to it must not be served
    (d / 'feats' / 'link.npy').symlink_to(d / 'secret.npy')
    return d, world, vids


@pytest.fixture(scope='module')
def running(setup):
    d, world, vids = setup
    server, url, app = launch(d / 'run' / 'checkpoint.pt', d / 'feats', port=0, device='cpu')
    yield url, app
    stop(server)


def call(url, path, data=None, headers=None, method=None):
    req = urllib.request.Request(url + path.lstrip('/'), data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as r: return r.status, r.read()
    except urllib.error.HTTPError as e: return e.code, e.read()


def client(url):
    from gradio_client import Client
    return Client(url, verbose=False, download_files=False)


def png_size(png: bytes):
    "(width, height) of a PNG, from its IHDR chunk."
    return struct.unpack('>II', png[16:24])


def test_listens_on_loopback_only(running):
    url, _ = running
    assert url.startswith('http://127.0.0.1:')


def test_sources_never_leave_data(tmp_path):
    (tmp_path / 'd' / 'x').mkdir(parents=True); (tmp_path / 'out').mkdir()
    for f in ['a.npy', 'x/b.mkv', 'c.txt', '.h.npy']: (tmp_path / 'd' / f).write_bytes(b'1')
    (tmp_path / 'out' / 'o.npy').write_bytes(b'1')
    (tmp_path / 'd' / 'in.npy').symlink_to(tmp_path / 'd' / 'a.npy')          # a link inside --data: offered
    (tmp_path / 'd' / 'away.npy').symlink_to(tmp_path / 'out' / 'o.npy')      # a link out of it: not offered
    (tmp_path / 'd' / 'dir').symlink_to(tmp_path / 'out')                     # a linked folder: not entered
    got = list_sources(tmp_path / 'd', {'upload/v.pt': tmp_path / 'v.pt'})
    assert list(got) == ['a.npy', 'in.npy', 'x/b.mkv', 'upload/v.pt']
    assert safe_name('../../a b.npy') == 'a_b.npy' and safe_name('') == 'file'


def test_query_limits():
    assert parse_query_lines('a\n\n b \n') == ['a', 'b'] and parse_query_lines(['a']) == ['a']
    with pytest.raises(UniMDError, match='no queries'): parse_query_lines(' \n')
    with pytest.raises(UniMDError, match=f'at most {MAX_QUERIES}'): parse_query_lines('q\n' * (MAX_QUERIES + 1))
    with pytest.raises(UniMDError, match='characters'): parse_query_lines('x' * 1000)
    assert len(parse_query_lines('q\n' * MAX_QUERIES)) == MAX_QUERIES


def test_detect_and_bounded_picture(setup):
    d, world, vids = setup
    app = DemoApp(Predictor.from_checkpoint(d / 'run' / 'checkpoint.pt', device='cpu'), d / 'feats')
    r = app.detect(f'{vids[0]}.npy', f'{world.classes[0]}\nsomeone opens the door', top_k=3)
    assert list(r['rows']['task']) == ['tad'] * 3 + ['mr'] * 3 and r['video'] is None
    assert ((0 <= r['rows']['start']) & (r['rows']['start'] <= r['rows']['end']) & (r['rows']['end'] <= r['duration'])).all()
    small = png_size(r['png'])
    many = app.detect(f'{vids[0]}.npy', '\n'.join(f'query {i}' for i in range(MAX_QUERIES)), top_k=1)
    assert many['rows']['query'].nunique() > MAX_PLOTTED                                        # the table has them all
    w, h = png_size(many['png'])                                                                  # the picture the first 20
    assert w == small[0] and h <= 110 * (0.55 * MAX_PLOTTED + 1.3) + 1 and h > small[1]
    for bad, msg in [('link.npy', 'not one of the files'), ('../secret.npy', 'not one of the files'),
                     (str(d / 'feats' / f'{vids[0]}.npy'), 'not one of the files')]:
        with pytest.raises(UniMDError, match=msg): app.detect(bad, 'x')
    with pytest.raises(UniMDError, match='between 1 and'): app.detect(f'{vids[0]}.npy', 'x', top_k=1000)


def test_20000_queries_refused_in_one_line_within_a_second(running, setup):
    url, app = running
    _, world, vids = setup
    text = '\n'.join(['a person opens the door'] * 20000)                       # 480 KB: one request
    t = time.perf_counter()
    with pytest.raises(UniMDError) as e: app.detect(f'{vids[0]}.npy', text, 3)
    assert time.perf_counter() - t < 1.0 and str(e.value) == f'20000 queries: at most {MAX_QUERIES} at a time, one per line'
    t = time.perf_counter()
    with pytest.raises(Exception) as e: client(url).predict(f'{vids[0]}.npy', text, 3, api_name='/detect')
    assert time.perf_counter() - t < 10 and f'20000 queries: at most {MAX_QUERIES}' in str(e.value)


def test_api_detect(running, setup):
    url, app = running
    _, world, vids = setup
    status, video, png, table, now = client(url).predict(f'{vids[0]}.npy', f'{world.classes[0]}\nsomeone opens the door', 3,
                                                         api_name='/detect')
    assert status == f'6 moments in {vids[0]}.npy ({app.predictor.duration:.1f} s)'
    assert [r[:3] for r in table['data']] == [[world.classes[0], 'TAD', k] for k in (1, 2, 3)] + [['someone opens the door', 'MR', k] for k in (1, 2, 3)]
    assert Path(png['path'] if isinstance(png, dict) else png).read_bytes()[:4] == b'\x89PNG'
    with pytest.raises(Exception, match='link.npy is not in the list'): client(url).predict('link.npy', 'x', 3, api_name='/detect')


def test_foreign_host_and_other_origins_refused(running):
    url, app = running
    port = url.rstrip('/').rsplit(':', 1)[1]
    form = (b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.npy"\r\n'
            b'Content-Type: application/octet-stream\r\n\r\nabc\r\n--b--\r\n')
    up = {'Content-Type': 'multipart/form-data; boundary=b'}
    assert call(url, '/')[0] == 200 and call(url, '/', headers={'Host': f'localhost:{port}'})[0] == 200
    code, body = call(url, '/', headers={'Host': 'evil.example'})                   # DNS rebinding: a foreign Host
    assert code == 400 and b'evil.example' in body
    assert call(url, '/config', headers={'Host': f'evil.example:{port}'})[0] == 400
    code, body = call(url, '/gradio_api/upload', form, {**up, 'Origin': 'http://evil.example'})   # a form on another page
    assert code == 403 and b'evil.example' in body
    assert call(url, '/gradio_api/upload', form, {**up, 'Origin': 'null'})[0] == 403
    join = json.dumps({'data': ['x', 'y', 3], 'fn_index': 0, 'session_hash': 'abc'}).encode()
    assert call(url, '/gradio_api/queue/join', join, {'Content-Type': 'application/json', 'Origin': 'http://evil.example'})[0] == 403
    assert call(url, '/gradio_api/info', headers={'Origin': f'http://evil.example:{port}'})[0] == 403
    code, body = call(url, '/gradio_api/upload', form, {**up, 'Origin': url.rstrip('/')})           # the page itself: stored
    assert code == 200 and json.loads(body)[0].endswith('a.npy')


def test_file_route_serves_nothing_it_does_not_offer(running, setup):
    url, _ = running
    d, _, vids = setup
    for f in [d / 'feats' / 'link.npy', d / 'secret.npy', d / 'feats' / f'{vids[0]}.npy', ROOT / 'settings.ini', Path('/etc/passwd')]:
        assert call(url, f'/gradio_api/file={f}')[0] == 403, f


def test_bad_requests_answered_not_crashed(running):
    url, _ = running
    host, port = url[len('http://'):].rstrip('/').split(':')
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b'POST /gradio_api/queue/join HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n')
        assert s.recv(100).startswith(b'HTTP/1.1 400')
    with socket.create_connection((host, int(port)), timeout=10) as s:               # a body too large for a call: refused unread
        s.sendall(f'POST /gradio_api/queue/join HTTP/1.1\r\nHost: {host}\r\nContent-Length: {2 << 20}\r\n\r\n'.encode())
        assert s.recv(100).startswith(b'HTTP/1.1 413')
    half = [socket.create_connection((host, int(port)), timeout=30) for _ in range(50)]   # half-sent requests hold no thread
    try:
        for s in half: s.sendall(b'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n')
        assert call(url, '/')[0] == 200
        assert all(s.recv(1) == b'' for s in half)                      # and are closed after HEADER_TIMEOUT seconds
    finally:
        for s in half: s.close()


def test_guard_rules():
    h = lambda **kw: {k.replace('_', '-'): v for k, v in kw.items()}
    assert refusal('GET', '/', h(host='127.0.0.1:8765')) is None
    assert refusal('GET', '/', h(host='[::1]:8765')) is None
    assert refusal('GET', '/', h(host='evil.example'))[0] == 400
    assert refusal('GET', '/', h(host='0.0.0.0:80'), hosts=None) is None                          # --host 0.0.0.0: no Host list
    assert refusal('POST', '/x', h(host='a.hf.space', origin='https://a.hf.space', content_length='10'), hosts=None) is None
    assert refusal('POST', '/x', h(host='a.hf.space', origin='https://b.hf.space', content_length='10'), hosts=None)[0] == 403
    assert refusal('POST', '/x', h(host='10.0.0.1:7860', origin='https://a.hf.space', content_length='1'), hosts=None,
                   origins=('https://a.hf.space',)) is None
    assert refusal('POST', '/x', h(host='localhost:1')) == (411, 'give a Content-Length')
    assert refusal('POST', '/gradio_api/upload', h(host='localhost:1', content_length=str(10 << 30))) is None


def test_uploads_are_checked(tmp_path):
    (tmp_path / 'clip.webm').write_bytes(b'1'); (tmp_path / 'x.exe').write_bytes(b'1'); (tmp_path / 'e.npy').write_bytes(b'')
    name, ups = add_upload(tmp_path / 'clip.webm', {'upload/a.npy': 'p'})
    assert name == 'upload/clip.webm' and ups == {'upload/a.npy': 'p', 'upload/clip.webm': str(tmp_path / 'clip.webm')}
    with pytest.raises(UniMDError, match='not a feature file'): add_upload(tmp_path / 'x.exe', {})
    with pytest.raises(UniMDError, match='is empty'): add_upload(tmp_path / 'e.npy', {})


def test_cli_errors(tmp_path, setup):
    with pytest.raises(UniMDError, match='not found'): cli_app(['--checkpoint', str(tmp_path / 'none.pt')])
    d, _, _ = setup
    with pytest.raises(UniMDError, match='is not a folder'): cli_app(['--checkpoint', str(d / 'run' / 'checkpoint.pt'), '--data', str(tmp_path / 'no')])


def test_core_install_does_not_need_gradio(tmp_path):
    "unimd imports nothing from Gradio until the app runs; without it, `unimd app` says how to install it (exit 2)."
    env = {**os.environ, 'PYTHONPATH': f'{tmp_path}{os.pathsep}{ROOT}'}
    (tmp_path / 'gradio.py').write_text("raise ImportError('hidden by the test', name='gradio')\n")   # as if not installed
    code = ("import sys, unimd.app, unimd.cli, unimd.predictor; assert not {'gradio', 'fastapi', 'uvicorn'} & set(sys.modules);"
            "sys.exit(unimd.cli.main(['app', '--checkpoint', 'x.pt']))")
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == "unimd app: error: `unimd app` needs Gradio (gradio is not installed): pip install 'unimd[app]'"


def test_cli_serves_then_sigterm_removes_uploads(setup, tmp_path):
    "`unimd app` in its own process: its uploads go to one folder of its own, gone after SIGTERM; a busy port is one line."
    d, _, _ = setup
    env = {**os.environ, 'TMPDIR': str(tmp_path), 'PYTHONPATH': str(ROOT)}
    cmd = [sys.executable, '-c', 'import sys; from unimd.cli import main; sys.exit(main())', 'app', '--checkpoint', str(d / 'run' / 'checkpoint.pt'), '--device', 'cpu']
    p = subprocess.Popen(cmd + ['--port', '0'], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = p.stdout.readline().split(' at ')[1].split()[0]
        form = b'--b\r\nContent-Disposition: form-data; name="files"; filename="a.npy"\r\n\r\nabc\r\n--b--\r\n'
        code, body = call(url, '/gradio_api/upload', form, {'Content-Type': 'multipart/form-data; boundary=b'})
        [up] = tmp_path.glob('unimd-app-*')
        assert code == 200 and Path(json.loads(body)[0]).is_relative_to(up)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=60) == 0
    finally:
        if p.poll() is None: p.kill(); p.wait()
    assert list(tmp_path.glob('unimd-app-*')) == []
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); s.listen(1)
        out = subprocess.run(cmd + ['--port', str(s.getsockname()[1])], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and '--port' in out.stderr, out.stderr
    assert list(tmp_path.glob('unimd-app-*')) == []


def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def test_space_runs_locally(tmp_path):
    "space/: its README is a Space card (sdk: gradio), its requirements name unimd[app], and app.py serves the demo's model."
    card = (ROOT / 'space' / 'README.md').read_text()
    front = card.split('---')[1]
    assert 'sdk: gradio' in front and 'app_file: app.py' in front and 'sdk_version: 6.' in front
    assert 'unimd[app]' in (ROOT / 'space' / 'requirements.txt').read_text()
    port = free_port()
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'GRADIO_SERVER_PORT': str(port), 'UNIMD_SPACE_DIR': str(tmp_path / 'space'),
           'UNIMD_SPACE_STEPS': '2'}                                    # the demo's model, trained for 2 steps only
    p = subprocess.Popen([sys.executable, 'app.py'], cwd=ROOT / 'space', env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = p.stdout.readline()
        assert f'at http://127.0.0.1:{port}/' in line, line + p.stdout.read() if p.poll() is not None else line
        url = f'http://127.0.0.1:{port}/'
        code, page = call(url, '/')
        assert code == 200 and b'UniMD' in page
        assert call(url, '/', headers={'Host': 'evil.example'})[0] == 400
        feats = sorted(os.listdir(tmp_path / 'space' / 'data'))
        assert len(feats) == 6
        status = client(url).predict(feats[0], 'a person opens the door', 2, api_name='/detect')[0]
        assert status.startswith(f'2 moments in {feats[0]}')
    finally:
        p.terminate(); p.wait(timeout=60)


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
              '--window-size=1280,1600']:
        o.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)


def page_tools(b):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    css = lambda s: b.find_element(By.CSS_SELECTOR, s)
    wait = WebDriverWait(b, 120)
    rows = lambda: [[td.text for td in tr.find_elements(By.CSS_SELECTOR, '[role=gridcell]')] for tr in b.find_elements(By.CSS_SELECTOR, '#results .virtual-row')]
    def pick(value):                                             # Gradio's dropdown: type the name, take the option
        css('#source input').click()
        wait.until(lambda _: [o for o in b.find_elements(By.CSS_SELECTOR, 'ul[role=listbox] li') if o.text.split('\n')[-1] == value])[0].click()
        wait.until(lambda _: css('#source input').get_attribute('value') == value)
    def error():
        toasts = b.find_elements(By.CSS_SELECTOR, '[data-testid="toast-text"]')
        return ' '.join(t.text for t in toasts)
    return By, css, wait, rows, pick, error


def run_and_wait(b, css, wait, error):
    "Press Detect; wait for a new status line (its last line: a progress timer shows above it while it runs) or an error."
    last = lambda: css('#status').text.split('\n')[-1]
    before = last()
    css('#run').click()
    wait.until(lambda _: (last() != before and 'moments in' in last()) or error())
    return last()


def test_page_in_headless_chromium(running, setup, tmp_path):
    url, app = running
    _, world, vids = setup
    b = browser_or_skip(tmp_path)
    from selenium.webdriver.common.keys import Keys
    try:
        By, css, wait, rows, pick, error = page_tools(b)
        b.get(url)
        wait.until(lambda _: b.find_elements(By.CSS_SELECTOR, '#run'))
        assert b.title == 'UniMD demo'
        pick(f'{vids[1]}.npy')
        b.find_elements(By.CSS_SELECTOR, '#chips button.gallery-item')[0].click()     # a TAD class, by clicking it
        wait.until(lambda _: css('#queries textarea').get_attribute('value') == world.classes[0])
        css('#queries textarea').send_keys('\na person opens the door')
        css('#topk input').clear(); css('#topk input').send_keys('2')
        run_and_wait(b, css, wait, error)
        assert error() == ''
        got = rows()
        assert [r[0] for r in got] == [world.classes[0]] * 2 + ['a person opens the door'] * 2
        assert [r[1] for r in got] == ['TAD', 'TAD', 'MR', 'MR'] and [r[2] for r in got] == ['1', '2', '1', '2']
        assert b.execute_script("return document.querySelector('#timeline img').naturalWidth") > 100
        assert not b.find_elements(By.CSS_SELECTOR, '#player video')                       # a feature file: nothing to play
        css('#queries textarea').send_keys(Keys.CONTROL, 'a', Keys.DELETE); css('#run').click()  # no queries: the message, in the page
        wait.until(lambda _: error())
        assert 'no queries' in error()
        for x in b.find_elements(By.CSS_SELECTOR, '[data-testid="toast-close"]'): x.click()
        wait.until(lambda _: not error())
        buf = tmp_path / 'picked.npy'; np.save(buf, world.features(vids[0]))                 # upload through the file picker
        css('#file input[type=file]').send_keys(str(buf))
        wait.until(lambda _: css('#source input').get_attribute('value') == 'upload/picked.npy')
        css('#queries textarea').send_keys(world.classes[1])
        status = run_and_wait(b, css, wait, error)
        assert status.startswith('2 moments in upload/picked.npy') and len(rows()) == 2, error()
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
    app = DemoApp(Predictor.from_checkpoint(d / 'run' / 'checkpoint.pt', device='cpu', extractor=enc), d / 'videos')
    server, url = serve(app, port=0)
    yield url, app, make_world(cfg.data.synthetic)
    stop(server)


def test_api_video_plays_with_ranges(video_running):
    url, app, world = video_running
    status, video, png, table, now = client(url).predict('square.webm', world.classes[0], 2, api_name='/detect')
    assert status.startswith('2 moments in square.webm (10.0 s') and len(table['data']) == 2
    whole = (Path(app.data_dir) / 'square.webm').read_bytes()
    src = video['value']['url']
    code, got = call(url, src[src.index('/gradio_api/'):], headers={'Range': 'bytes=1000-'})
    assert code == 206 and got == whole[1000:]
    assert call(url, f'/gradio_api/file={Path(app.data_dir) / "square.webm"}')[0] == 200             # the offered video
    (Path(app.data_dir) / 'notes.txt').write_text('not offered')
    assert call(url, f'/gradio_api/file={Path(app.data_dir) / "notes.txt"}')[0] == 403                 # nothing else in --data


def test_click_seeks_the_player_in_headless_chromium(video_running, tmp_path):
    url, app, world = video_running
    b = browser_or_skip(tmp_path)
    try:
        By, css, wait, rows, pick, error = page_tools(b)
        b.get(url)
        wait.until(lambda _: b.find_elements(By.CSS_SELECTOR, '#run'))
        assert not b.find_elements(By.CSS_SELECTOR, '#player video')                          # nothing to play yet
        pick('square.webm')
        css('#queries textarea').send_keys(f'{world.classes[1]}\nthe red square moves right')
        css('#topk input').clear(); css('#topk input').send_keys('3')
        run_and_wait(b, css, wait, error)
        assert error() == ''
        player = "document.querySelector('#player video')"
        wait.until(lambda _: b.execute_script(f"return {player} && {player}.readyState >= 1"))
        assert abs(b.execute_script(f"return {player}.duration") - 10) < 0.1
        got = rows()
        assert len(got) == 6
        for k in (4, 1):                                                                      # a later moment, then an earlier one
            start = float(got[k][3])
            css(f'#results .virtual-row[data-index="{k}"] [role=gridcell]').click()
            wait.until(lambda _: b.execute_script(f"const p = {player}; return !p.seeking && Math.abs(p.currentTime - {start}) < 1e-3"))
            wait.until(lambda _: f'at {start:.2f} s' in css('#now').text)
        assert b.execute_script(f"return {player}.paused")                                   # seeking does not start playback
    finally:
        b.quit()
