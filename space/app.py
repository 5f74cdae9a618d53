"""UniMD demo as a Hugging Face Space: the demo's SYNTHETIC co-trained model, served by `unimd app` (Gradio).

On first start it trains the co-trained (sync) model of `unimd demo --quick` on the SYNTHETIC world (a few minutes on
a CPU Space; the checkpoint is kept in $UNIMD_SPACE_DIR) and offers the features of a few of the world's test videos.
A SYNTHETIC model reads only the SYNTHETIC world's rendered features, not real videos: to show your own model, set
UNIMD_SPACE_CHECKPOINT (a checkpoint, a pretrained folder or a hub id) and UNIMD_SPACE_DATA (a folder of its features
or videos).

Run it locally: `pip install -r requirements.txt && python app.py` (then open http://127.0.0.1:7860).
"""
import os, sys
from pathlib import Path


def demo_checkpoint(root: Path, steps=None, n_videos=6):
    "The demo's SYNTHETIC co-trained checkpoint and a folder of test-video features, made once under `root`."
    from unimd.config import update_config
    from unimd.demo import demo_config
    from unimd.features import save_features
    from unimd.synthetic import make_world
    from unimd.train import train
    cfg = update_config(demo_config(quick=True), {'train': dict(mode='cotrain', sampler='sync', eval_epochs=[])})
    ckpt, data = root / 'run' / 'checkpoint.pt', root / 'data'
    if not (root / 'run' / 'done').exists():
        train(cfg, root / 'run', progress=False, stop_after=steps)
        (root / 'run' / 'done').write_text('trained\n')
    world = make_world(cfg.data.synthetic)
    for vid in sorted(world.split('test'))[:n_videos]:
        if not (data / f'{vid}.npy').exists(): save_features(data, vid, world.features(vid))
    return ckpt, data


def main():
    env = os.environ
    on_space = 'SPACE_ID' in env                                     # set by Hugging Face on a Space
    host = env.get('GRADIO_SERVER_NAME', '0.0.0.0' if on_space else '127.0.0.1')
    port = env.get('GRADIO_SERVER_PORT', '7860')
    if env.get('UNIMD_SPACE_CHECKPOINT'): ckpt, data = env['UNIMD_SPACE_CHECKPOINT'], env.get('UNIMD_SPACE_DATA')
    else:
        steps = int(env['UNIMD_SPACE_STEPS']) if env.get('UNIMD_SPACE_STEPS') else None
        ckpt, data = demo_checkpoint(Path(env.get('UNIMD_SPACE_DIR', 'unimd-space')), steps)
    argv = ['--checkpoint', str(ckpt), '--host', host, '--port', port, '--max-upload-mb', env.get('UNIMD_SPACE_MAX_UPLOAD_MB', '200')]
    if data: argv += ['--data', str(data)]
    if env.get('SPACE_HOST'): argv += ['--allow-origin', f"https://{env['SPACE_HOST']}"]   # the Space's own address
    from unimd.cli import main as unimd
    return unimd(['app', *argv])


if __name__ == '__main__':
    sys.exit(main())
