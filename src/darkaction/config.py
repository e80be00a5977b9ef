"""One typed config tree for every stage: dataclasses, YAML in and out, dotted overrides.

    cfg = load_config("configs/demo.yaml", overrides=["train.epochs=3", "model.head=tgap"])
    save_config(cfg, run_dir / "config.yaml")

An unknown key anywhere is a `ConfigError` that names the key and suggests the nearest valid one.
Each section belongs to one stage of the data path (see docs/design.md); add a field to the section that uses it.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from darkaction.errors import ConfigError

# ARID 1.1 track-1 classes in ARID id order (ids 5..10); the synthetic dataset uses the same names.
TRACK1_CLASSES = ["Run", "Sit", "Stand", "Turn", "Walk", "Wave"]

# Choices: a value outside its Literal is a ConfigError at load time that names the key and lists the valid values.
# The modules that act on a choice take their list from here (typing.get_args), so it is written once.
SourceFormat = Literal["synth", "arid-csv", "arid-v1", "hmdb51", "folders", "list", "frames-list"]
Strategy = Literal["delta", "constant", "length", "variable", "uniform", "consecutive"]
StrategyOrSame = Literal["", "delta", "constant", "length", "variable", "uniform", "consecutive"]  # "" = as above
Normalize = Literal["kinetics", "arid", "none", "index", "clip"]
BlankMode = Literal["black", "zero", "hold"]
SEKind = Literal["temporal", "channel"]
TimeNorm = Literal["none", "l2", "rms"]


@dataclass
class DataSource:
    """Where videos and their split lists are. `format` picks the parser in `darkaction.data.index`."""

    format: SourceFormat = "synth"
    root: str = "data/synth"  # videos (or frame folders) live under this folder; list paths may not escape it
    train_list: str = ""  # split list / CSV for training (relative to root or absolute); "" = format default
    test_list: str = ""  # split list / CSV for testing; "" = format default
    # split number for formats that have several (ARID v1, HMDB51); HMDB51 also takes "all" (every clip, training)
    split: int | str = 1
    classes: list[str] = field(default_factory=list)  # keep only these classes (any case); [] = all
    mapping: str = ""  # ARID v1 mapping_table.txt ("" = <root>/mapping_table.txt or the built-in table)
    # arid-csv: the labelled test CSV names bare files `N.mp4`; they resolve against this folder ("" = <root>/test)
    test_root: str = ""
    label_names: list[str] = field(default_factory=list)  # list formats with integer labels: names in index order


@dataclass
class DataConfig:
    source: DataSource = field(default_factory=DataSource)
    extra_train: list[DataSource] = field(default_factory=list)  # e.g. HMDB51 clips joining ARID training
    prepared: str = "prepared/synth"  # where `prepare` writes the index and the frame cache
    val_fraction: float = 0.0  # held out of train for validation (paper: 0.2 -> 1470 / 367 of 1837)
    val_group_disjoint: bool = False  # keep recording groups whole when splitting train/val
    split_seed: int = 0


@dataclass
class CacheConfig:
    resize: Literal["fixed", "short_side"] = "fixed"  # fixed: exactly height x width (paper 112) | keep aspect
    height: int = 112
    width: int = 112
    short_side: int = 128
    # none | actor: each frame cut to a window of crop_scale of its height and width that follows the moving person
    # sideways (darkaction/data/actor.py; not in the paper), so how far they travel across the picture does not show;
    # the frame is resized to (height, width) / crop_scale first, so the window is the cache size (fixed resize only);
    # on the cpu preset it fixed the long test walks but cost 15 points (docs/results.md, session 26): no preset sets it
    crop: Literal["none", "actor"] = "none"
    crop_scale: float = 0.8
    workers: int = 2  # processes decoding videos in parallel
    strict: bool = False  # stop with an error on the first bad video instead of skipping it


@dataclass
class SynthConfig:
    out: str = "data/synth"
    seed: int = 0
    classes: list[str] = field(default_factory=lambda: list(TRACK1_CLASSES))
    width: int = 160
    height: int = 120
    fps: int = 30
    train_groups: int = 4  # distinct (subject, scene) groups in train
    test_groups: int = 2  # distinct groups in test, disjoint from train
    reps: int = 5  # clips per (class, group): repetitions with small variations
    min_frames: int = 33
    max_frames: int = 225
    brightness: list[float] = field(default_factory=lambda: [5.0, 45.0])  # mean 8-bit brightness range
    figure_scale: float = 1.0  # multiplies the figure's size (and limb thickness) in the picture; 1 = standing ~0.46 H
    noise: float = 1.0  # scales shot and read noise; 0 = clean
    crf: int = 23  # H.264 quality
    # which named profile these settings came from (`synth --profile`: default | arid | arid-tables | arid-val |
    # pretrain)
    profile: str = "default"
    test_reps: int = 0  # clips per (class, test group); 0 = reps
    figure_height: list[float] = field(default_factory=list)  # [lo, hi] standing height / frame height per group
    dark_fraction: float = 0.0  # share of clips that are nearly black, at a level drawn from dark_brightness
    # mean 8-bit level of the nearly black takes; below ~4.5 this renderer's noise and H.264 leave no trace of the
    # person (measured, docs/results.md), and a clip with no information teaches nothing
    dark_brightness: list[float] = field(default_factory=lambda: [4.5, 7.0])
    action_fraction: list[float] = field(default_factory=lambda: [0.45, 0.75])  # share of the clip the action takes
    length_bias: bool = True  # train clip lengths depend on the class (ARID's confound); test lengths never do
    # walks' and runs' travel speed and stride rate: class = each class its own range (run fast, walk slow) | shared =
    # one common range for both, so that only the body tells them apart (leg swing, bent elbows, knees, lean): for a
    # pretraining corpus whose backbone should read the gait, not how far the figure moves per sampled frame
    gait_speed: Literal["class", "shared"] = "class"
    preview: bool = False
    workers: int = 2  # processes rendering clips in parallel (1 = in this process); output is identical either way


# Named settings of the synthetic dataset: `synth.profile: NAME` (or `darkaction synth --profile NAME`) fills every
# synth key the config does not set itself. `arid` has the structure of
# ARID 1.1 track 1 (320x240, 30 fps, 33-225 frames, few recording groups repeated, small people in the dark, a fifth
# of the takes nearly black);
# `arid-val` is the same structure with another seed and other render settings, for validating a preset on data it
# was not tuned on; `pretrain` is the bright, many-group corpus of 14 motion kinds the backbone is pretrained on
# (`darkaction pretrain`), with seeds, sizes, brightness and noise that the evaluation profiles do not share.
SYNTH_PROFILES: dict[str, dict] = {
    "default": {},
    "arid": {
        "seed": 0, "width": 320, "height": 240, "fps": 30, "min_frames": 33, "max_frames": 225,
        "train_groups": 16, "test_groups": 5, "reps": 3, "test_reps": 4,
        "brightness": [4.5, 55.0], "dark_fraction": 0.2, "figure_height": [0.35, 0.7],
        "action_fraction": [0.35, 0.75], "noise": 1.0, "crf": 23, "figure_scale": 1.0,
    },
    # `arid` with 15 unseen test groups (360 test videos) for tables with statistical power (issue 14): the clips are
    # keyed by (seed, class, group, take), so its training clips and first 5 test groups are arid's own
    "arid-tables": {
        "seed": 0, "width": 320, "height": 240, "fps": 30, "min_frames": 33, "max_frames": 225,
        "train_groups": 16, "test_groups": 15, "reps": 3, "test_reps": 4,
        "brightness": [4.5, 55.0], "dark_fraction": 0.2, "figure_height": [0.35, 0.7],
        "action_fraction": [0.35, 0.75], "noise": 1.0, "crf": 23, "figure_scale": 1.0,
    },
    "arid-val": {
        "seed": 101, "width": 320, "height": 240, "fps": 30, "min_frames": 33, "max_frames": 225,
        "train_groups": 16, "test_groups": 5, "reps": 3, "test_reps": 4,
        "brightness": [5.0, 40.0], "dark_fraction": 0.15, "dark_brightness": [5.0, 8.0],
        "figure_height": [0.3, 0.6], "action_fraction": [0.45, 0.85], "noise": 1.3, "crf": 26, "figure_scale": 1.0,
    },
    "pretrain": {
        "seed": 7919, "width": 160, "height": 120, "fps": 30, "min_frames": 33, "max_frames": 150,
        "classes": ["Run", "Sit", "Stand", "Turn", "Walk", "Wave",
                    "Jump", "Squat", "Bow", "Kick", "Clap", "Punch", "RaiseArms", "Sidestep"],
        "train_groups": 80, "test_groups": 4, "reps": 1, "test_reps": 1,
        "brightness": [60.0, 150.0], "dark_fraction": 0.0, "figure_height": [0.3, 0.75],
        "action_fraction": [0.4, 0.9], "noise": 0.3, "crf": 23, "figure_scale": 1.0, "length_bias": False,
    },
}  # fmt: skip


@dataclass
class DCETrainConfig:
    """Zero-DCE training (official code's settings; the paper names 100 epochs, Adam, lr 1e-4)."""

    n_frames: int = 2500  # frames sampled uniformly from the training videos
    # cache: those frames as cached (resized) | source: decoded again at their recorded resolution (the paper)
    frames_from: Literal["cache", "source"] = "cache"
    extra_images: str = ""  # folder of extra images of varied illumination (paper: 2,000)
    image_size: int = 256
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 1e-4
    grad_clip: float = 0.1
    w_tv: float = 200.0
    w_spa: float = 1.0
    w_col: float = 5.0
    w_exp: float = 10.0
    exposure: float = 0.6
    exposure_patch: int = 16
    loss_form: Literal["code", "paper"] = "code"  # code: as the official implementation | paper: as written
    seed: int = 0
    out: str = ""  # where weights go ("" = <prepared>/enhancers/zero-dce)


@dataclass
class EnhanceConfig:
    method: Literal["zero-dce", "zero-dce++", "gamma", "identity", "external"] = "zero-dce"
    weights: str = ""  # local weights file; "" = train one with `enhance train` first
    gamma: float = 0.5  # gamma-correction baseline: out = in ** gamma
    scale_factor: int = 1  # Zero-DCE++: estimate curves on an input downscaled by this factor
    at: Literal["cache", "source"] = "cache"  # cache: the resized frames | source: at source resolution, then resize
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    batch_size: int = 32
    external: str = ""  # ONNX / TorchScript model file for method=external (e.g. EnlightenGAN)
    train: DCETrainConfig = field(default_factory=DCETrainConfig)


@dataclass
class SamplingConfig:
    strategy: Strategy = "delta"
    T: int = 64
    beta: float = 0.0
    gamma: float = 1.5
    # the maximum sampling rate; auto = N_max / T over the training split, rounded up to 0.1, so that no training
    # clip is cropped (ARID at T=64: 3.6; the paper's fixed 4 also crops none); the run's config records the value
    alpha: float | Literal["auto"] = "auto"
    n_min: int = 0  # 0 = from the training index
    n_max: int = 0  # 0 = from the training index
    test_strategy: StrategyOrSame = ""
    test_views: int = 5  # views averaged per test video (paper: 5 sets of (delta, P1, P2))
    # the rates of the test views (delta and length sampling): own = the rate of the video's own length (the paper);
    # train = view k of V at the rate of a training-length L_k, spaced geometrically from n_min to n_max (at most the
    # video's own length), so a test video is also seen at the rates training used whatever its length: the train /
    # test length shift of ARID (Figure 4) otherwise shows a long test video faster than any training one. Other
    # strategies ignore it. Validation during training follows it too
    test_rates: Literal["own", "train"] = "own"
    view_seed: int = 0
    # black: blank frames are black before normalisation (the paper) | zero: zero after it | hold: each blank shows the
    # nearest sampled frame, still (the person before / after the action rather than a black screen; not in the paper)
    blank: BlankMode = "black"
    # frame: each slot is the frame at its sampled index (the paper) | span: the mean of the frames from its index up
    # to the next slot's (the last: as long as the gap before it), as a longer exposure would record them; not in the
    # paper: at large strides (T=16 over 225 frames: 14) single frames alias a gait, and averaging also lowers the
    # frame-to-frame noise of dark clips. Training, evaluation and the Recognizer alike; not with optical flow
    slot: Literal["frame", "span"] = "frame"


@dataclass
class DarkenConfig:
    """Dark copies of the training videos (not in the paper; `darkaction.data.lowlight`): `prepare` records each
    training video `copies` times more as a camera would have in near darkness (linear-light exposure scaled to a
    mean 8-bit `level`, Poisson shot noise with `photons` photo-electrons at full scale, Gaussian `read_noise` in
    linear full-scale units, an H.264 round trip at `crf`), each copy's values drawn from these bounds; training
    reads one of a video's copies instead of the video for a share `p` of its draws. 0 copies = off."""

    copies: int = 0
    p: float = 0.25
    # the bounds span near-black footage from noise-dominated (SNR about 1 at the mean level) to clean but posterised
    # (SNR about 7): a copy must still hold the action to teach anything
    level: list[float] = field(default_factory=lambda: [5.0, 12.0])  # target mean 8-bit level, log-uniform
    photons: list[float] = field(default_factory=lambda: [5000.0, 200000.0])  # log-uniform
    read_noise: list[float] = field(default_factory=lambda: [1.0e-5, 2.0e-4])  # uniform
    crf: list[float] = field(default_factory=lambda: [18, 30])  # integer, uniform
    seed: int = 0


@dataclass
class AugmentConfig:
    height: int = 112
    width: int = 112
    hflip: float = 0.5  # probability
    rotation: float = 10.0  # max degrees, uniform in [-r, r]
    translation: float = 0.1  # max shift as a fraction of the size
    # multi-scale crop (the reference's MultiScaleCrop, scales 1 .. 0.66): in training the crop window's side is a
    # fraction s ~ U[low, high] of the largest window of the output's shape that fits the frame, resized to the
    # output size; [] = a crop at the frame's own scale (height x width pixels of the cache). Evaluation: centre crop
    scale: list[float] = field(default_factory=list)
    # speed augmentation (not in the paper; [1, 1] = off): each training clip's sampling rate times a log-uniform
    # factor in [low, high], so a class's apparent speed does not follow its training videos' lengths (delta
    # sampling's rate grows with N; a factor below 1 crops a window, above 1 adds padding; alpha still caps it)
    rate_scale: list[float] = field(default_factory=lambda: [1.0, 1.0])
    # length mixing (not in the paper; 0 = off): this share of the training clips is sampled at the rate delta
    # sampling gives a video of another length, drawn from the training videos' lengths, so the rate (and the
    # apparent speed it gives) no longer follows the class when train lengths depend on it (ARID's, Figure 4) and
    # test lengths do not. The clip keeps its frames: a shorter length crops a window, a longer one pads
    length_mix: float = 0.0
    # looping (not in the paper; 0 = off): this share of the training clips is played in a loop up to the length of
    # another training video (drawn from the training videos' lengths; when it is not longer, the clip is left as
    # is) and delta-sampled as a video of that length: a short clip's motion then fills the slots at a long video's
    # rate, without the padding that a faster rate alone leaves (so padding cannot tell the speed-up apart);
    # session 28: no gain at 0.5 or 1.0, walks still told from runs by speed (docs/results.md)
    loop: float = 0.0
    # camera pan (not in the paper; 0 = off): in training the crop slides sideways at a constant speed over the clip,
    # by U[-pan, pan] x the output width from the first slot to the last, so how far a figure travels across the
    # picture (set by the action's duration, which follows the class in ARID-like training sets) says less about
    # the action than its pose does
    pan: float = 0.0
    darken: DarkenConfig = field(default_factory=DarkenConfig)
    normalize: Normalize = "kinetics"
    mean: list[float] = field(default_factory=list)  # overrides `normalize` when set
    std: list[float] = field(default_factory=list)


@dataclass
class ModelConfig:
    # c3d | resnext101_3d | squeezenet_3d: Figure 1's comparison networks, with their own classifiers (no `head`)
    backbone: Literal[
        "r2plus1d_18", "r2plus1d_34", "slowfast", "efficientnet_b0", "c3d", "resnext101_3d", "squeezenet_3d"
    ] = "r2plus1d_34"
    head: Literal["bert", "tgap", "mran"] = "bert"
    ig65m_midplanes: bool = True  # IG65M's Caffe2 mid-channel counts (paper weights); False = torchvision's rule
    width: float = 1.0  # channel multiplier (1.0 = 64..512); smaller for CPU-sized models
    # R(2+1)D strides over time of layers 2-4 (paper: 2,2,2 -> T/8 BERT tokens); 1s keep the head's >= 8 time steps
    # for short CPU-sized clips (T=16 with [2, 1, 1] -> 8)
    temporal_strides: list[int] = field(default_factory=lambda: [2, 2, 2])
    se: bool = False  # squeeze-excitation (reduction 16) after every block's second conv (Table 2 baseline)
    # temporal: attention along time, the paper's SE row (a gate per time step) | channel: Hu et al.'s channel SE
    se_kind: SEKind = "temporal"
    in_channels: int = 3  # 3 = RGB, 5 = RGB + 2 optical-flow channels
    # local torchvision / IG65M state dict (fc is replaced, an RGB stem inflated for 5 channels); "" or "none" = from
    # scratch; "required" = refuse to start without one (configs/paper.yaml)
    pretrained: str = ""
    bn_momentum: float = 0.1  # PyTorch convention; the reference's 0.9 follows the last batch only
    bn_eps: float = 1e-3  # IG65M's value (torchvision's own r2plus1d_18 weights used 1e-5)
    freeze_bn: bool = False  # fine-tuning: backbone BN stays in eval mode with frozen affine parameters
    bert_hidden: int = 512
    bert_layers: int = 1
    bert_heads: int = 8
    bert_ffn: int = 2048
    bert_dropout: float = 0.1
    bert_keep: float = 0.8  # probability of keeping a temporal token in training
    cls_dropout: float = 0.8  # before the classifier, BERT and TGAP heads
    # before BERT: none (what the reference feeds) | l2 (each time step's vector) | rms (each channel over time);
    # models/bert.py says which is which
    time_norm: TimeNorm = "none"
    # sampling-rate input (not in the paper; R(2+1)D with a bert or tgap head): the head also gets each clip's
    # frames per slot (log), so a motion's apparent speed can be read against the rate that produced it (delta
    # sampling's rate grows with the video's length). Pair it with `augment.length_mix` so that in training the
    # rate says nothing about the class
    rate_input: bool = False
    mran_weight: float = 1.0  # scale of the CMMD loss (times the lambda schedule)
    # SlowFast (Table 2 baseline; `width` scales it too): the slow pathway sees every alpha-th frame, the fast one
    # all T frames with beta times the channels (SlowFast paper: alpha 8, beta 1/8); basic-block ResNet depth 18 | 34
    slowfast_alpha: int = 8
    slowfast_beta: float = 0.125
    slowfast_depth: int = 34
    efficientnet_dropout: float = 0.2  # EfficientNet-B0 stochastic-depth rate (B0: 0.2); `width` scales its channels


@dataclass
class TrainConfig:
    epochs: int = 300
    batch_size: int = 2
    accumulate: int = 1
    loss: Literal["focal", "ce"] = "focal"
    focal_gamma: float = 2.0
    focal_alpha: list[float] = field(default_factory=list)  # per-class weights; [] = none
    optimizer: Literal["ranger", "adamw"] = "ranger"
    lr: float = 1e-3
    # the pretrained backbone's learning rate as a factor of `lr` (the new head keeps `lr`); 1 = one rate for every
    # parameter, as the paper. Below 1 fine-tunes the backbone more gently than the head it has not seen
    backbone_lr: float = 1.0
    weight_decay: float = 0.0
    lookahead_k: int = 6
    lookahead_alpha: float = 0.5
    scheduler: Literal["onecycle", "plateau", "none"] = "onecycle"
    pct_start: float = 0.3
    precision: str = "auto"  # auto (bf16 where faster) | 32 | bf16-mixed | 16-mixed
    accelerator: str = "auto"
    devices: str = "1"  # Lightning devices: 1, 4, "auto", "0,1"
    num_nodes: int = 1
    strategy: str = "auto"  # auto | ddp | ddp_spawn ...
    workers: int = 2
    seed: int = 0
    max_steps: int = -1
    limit_train_batches: float = 1.0
    check_val_every: int = 1
    progress: bool = True
    # torch.compile (inductor) the model for training: true | false | auto (on for bf16 autocast on a CPU where a C++
    # compiler is found, which inductor's CPU backend needs; else eager). Off by default. With channels_last and bf16
    # on an AMX CPU the cpu preset's step ran 1.47x bf16 eager (inductor fuses the batch norms that are slow in
    # channels-last eager); fp32 alone ran 0.95x eager on an AMD CPU (docs/results.md). State-dict names do not change.
    # Validation and a last smaller batch each compile a graph of their own; precise BN's no-grad passes run eagerly.
    compile: bool | Literal["auto"] = False
    # the model's 5-D weights and clips in channels_last_3d memory during training: true | false | auto (on where the
    # step runs bf16 autocast on a CPU; in fp32 the cpu preset's fit ran 1.16x faster channels-last but 1-2.5 points
    # lower in 2 paired seeds, session 25). Off by default. Eager, the cpu preset's bf16 step is about as fast either
    # way (oneDNN's bf16 convolutions run channels-last inside and copy back, channels-last batch norm is 2.3x slower);
    # compiled, channels-last is what makes it fast (docs/results.md, session 15)
    channels_last: bool | Literal["auto"] = False
    # Lightning's profiler of the fit: simple (time per hook; also <run>/fit-shares.json: the training step against
    # data, optimizer, precise BN, checkpoints ...) | advanced (cProfile) | pytorch (operators); the report goes to
    # <run>/fit-profile.txt (fit-profile-<rank>.txt per process with DDP) ("" = off)
    profiler: Literal["", "simple", "advanced", "pytorch"] = ""
    # clips over which BN statistics are recomputed exactly, before each validation and for the checkpoints once
    # training ends (0 = off; training/precise_bn.py)
    precise_bn: int = 200
    # loggers besides metrics.csv (always written: curves, report and resume read it); wandb runs offline into the
    # run directory, mlflow logs to MLFLOW_TRACKING_URI or ./mlruns; both need their package installed
    loggers: list[Literal["csv", "tensorboard", "wandb", "mlflow"]] = field(default_factory=lambda: ["tensorboard"])
    # Backbone warm-up when no pretrained weights are given: first train the backbone with a TGAP head for this many
    # epochs (into <run>/pretrain), then train the configured model from it. A stand-in for the paper's IG65M
    # pretraining on CPU-sized from-scratch runs, where a BERT head learns far more slowly than a TGAP head.
    pretrain_epochs: int = 0


@dataclass
class EvalConfig:
    views: int = 5
    # test-time mirroring (not in the paper): every view is also classified left-right mirrored and the two softmaxes
    # averaged (training mirrors clips with augment.hflip, so the mirror is an equally likely view); 2x the cost and
    # the memory per batch. Test and predict only: validation during training does not mirror
    flip: bool = False
    strategy: StrategyOrSame = ""  # "" = sampling.test_strategy or sampling.strategy
    # videos per forward pass, each with all its `views` clips; on a 2-core CPU 8 videos (40 clips) a batch ran at
    # 0.64x the clips/s of 1 (docs/results.md), so 1 stays the default; raise it on a GPU
    batch_size: int = 1
    split: Literal["test", "val", "train"] = "test"


@dataclass
class ExperimentConfig:
    preset: Literal["cpu", "paper"] = "cpu"
    seeds: int = 1
    out: str = "runs/experiments"


@dataclass
class Config:
    name: str = "default"
    run_dir: str = ""  # "" = runs/<name>
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:1
    data: DataConfig = field(default_factory=DataConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    enhance: EnhanceConfig = field(default_factory=EnhanceConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)

    def resolved_run_dir(self) -> Path:
        return Path(self.run_dir or f"runs/{self.name}")


# ---------------------------------------------------------------------------------------------- loading


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _suggest(key: str, valid: list[str], prefix: str = "") -> str:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    pre = f"{prefix}." if prefix else ""
    if near:
        return f"; did you mean '{pre}{near[0]}'?"
    return f"; valid keys under '{prefix or 'top level'}': {', '.join(valid)}"


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check / convert one YAML value to the annotated type; errors name the dotted key."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if value is None:
            return tp()
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _from_dict(tp, value, where)
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        # the first type the value fits (float | str: 4 -> 4.0, "auto" -> "auto")
        for arg in args[:-1]:
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                continue
        return _coerce(value, args[-1], where)
    if origin is Literal:
        allowed = typing.get_args(tp)
        for a in allowed:  # YAML may give 1 for "1"; the choice is compared as written
            if value == a or (value is not None and not isinstance(value, (dict, list)) and str(value) == str(a)):
                return a
        shown = ", ".join(repr(a) if a == "" else str(a) for a in allowed)
        raise ConfigError(f"{where}: {value!r} is not a valid choice; choose one of: {shown}")
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return "" if value is None else str(value)
    return value


def _from_dict(cls: type, data: dict, where: str = "") -> Any:
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(f"unknown config key '{dotted}'{_suggest(str(key), names, where)}")
        kwargs[key] = _coerce(value, hints[key], dotted)
    return cls(**kwargs)


def config_from_dict(data: dict | None) -> Config:
    return _from_dict(Config, data or {})


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def apply_override(data: dict, override: Change) -> None:
    """Apply one `a.b.c=value` override (the value parsed as YAML) or ("a.b.c", value) pair to a plain dict."""
    if isinstance(override, tuple):
        dotted, value = override
    elif "=" not in override:
        raise ConfigError(f"override '{override}' must look like section.key=value (e.g. train.epochs=3)")
    else:
        dotted, raw = override.split("=", 1)
        value = yaml.safe_load(raw) if raw.strip() else ""
    keys = str(dotted).strip().split(".")
    node_cls: Any = Config
    node = data
    for i, key in enumerate(keys):
        names = [f.name for f in dataclasses.fields(node_cls)]
        if key not in names:
            prefix = ".".join(keys[:i])
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"unknown config key '{where}'{_suggest(key, names, prefix)}")
        tp = _hints(node_cls)[key]
        if i == len(keys) - 1:
            node[key] = _plain(value)
        else:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(f"'{'.'.join(keys[: i + 1])}' is a value, not a section")
            sub = node.get(key)
            if not isinstance(sub, dict):
                sub = node[key] = {}
            node = sub
            node_cls = tp


Change = str | tuple[str, Any]  # "section.key=yaml value" (a command line's --set) or ("section.key", value)


def load_config(path: str | os.PathLike | None = None, overrides: list[Change] | None = None) -> Config:
    """Load a YAML config (or the defaults when `path` is None) and apply dotted overrides in order: strings as the
    command line gives them (`train.epochs=3`, the value parsed as YAML), or (`"train.epochs"`, 3) pairs whose value
    is used as it is (code sets fields this way; no quoting). Every value is type-checked as the file's are."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: a config must be a mapping of sections")
    for ov in overrides or []:
        apply_override(data, ov)
    _expand_synth_profile(data)
    return config_from_dict(data)


def _plain(value: Any) -> Any:
    """A value set from code, as YAML would hold it: dataclasses become dicts (e.g. a DataSource in a list)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _expand_synth_profile(data: dict) -> None:
    """`synth.profile: NAME`: the profile's settings under whatever the config and overrides set themselves."""
    synth = data.get("synth")
    if not isinstance(synth, dict) or synth.get("profile") in (None, "", "default"):
        return
    name = str(synth["profile"])
    if name not in SYNTH_PROFILES:
        raise ConfigError(f"synth.profile {name!r} is unknown; choose one of: {', '.join(SYNTH_PROFILES)}")
    data["synth"] = {**SYNTH_PROFILES[name], **synth}


def save_config(cfg: Config, path: str | os.PathLike) -> Path:
    """Write the resolved config atomically (a run can be repeated from its directory alone)."""
    from darkaction.utils import atomic_write_text

    text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    return atomic_write_text(Path(path), text)
