"""Small pure-torch models with the patterns real exports have (tiny channel counts)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(b, -1, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNet-v2: stride-2 unit then a stride-1 unit with channel split and shuffle."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, 2, 1, bias=False)
        b = c // 2
        # stride-2 unit: both branches see the full input
        self.b1 = nn.Sequential(
            nn.Conv2d(c, c, 3, 2, 1, groups=c, bias=False),
            nn.BatchNorm2d(c),
            nn.Conv2d(c, b, 1, bias=False),
            nn.BatchNorm2d(b),
            nn.ReLU(),
        )
        self.b2 = nn.Sequential(
            nn.Conv2d(c, b, 1, bias=False),
            nn.BatchNorm2d(b),
            nn.ReLU(),
            nn.Conv2d(b, b, 3, 2, 1, groups=b, bias=False),
            nn.BatchNorm2d(b),
            nn.Conv2d(b, b, 1, bias=False),
            nn.BatchNorm2d(b),
            nn.ReLU(),
        )
        # stride-1 unit: split channels in half
        self.b3 = nn.Sequential(
            nn.Conv2d(b, b, 1, bias=False),
            nn.BatchNorm2d(b),
            nn.ReLU(),
            nn.Conv2d(b, b, 3, 1, 1, groups=b, bias=False),
            nn.BatchNorm2d(b),
            nn.Conv2d(b, b, 1, bias=False),
            nn.BatchNorm2d(b),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(c, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.cat((self.b1(x), self.b2(x)), dim=1)
        x = channel_shuffle(x, 2)
        x1, x2 = x.chunk(2, dim=1)
        x = torch.cat((x1, self.b3(x2)), dim=1)
        x = channel_shuffle(x, 2)
        return self.head(x)


class ShapeChain(nn.Module):
    """Reshapes computed from x.shape (Shape->Gather->Concat->Reshape) between convs."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 1)
        self.c3 = nn.Conv2d(4, 6, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c1(x)
        b, c, h, w = y.shape
        t = y.reshape(b, c, h * w).transpose(1, 2)  # tokens
        t = torch.softmax(t, dim=-1)
        y = t.transpose(1, 2).reshape(b, c, h, w) + y
        y = self.c2(y)
        # space-to-depth by reshape: (b, c, h, w) -> (b, c // 2, h * 2, w)
        y = y.reshape(b, c // 2, h * 2, w)
        y = y[:, : c // 2]  # Slice with a computed end
        return self.c3(y)


class Stft(nn.Module):
    """STFT as a strided Conv1d on a reflect-padded waveform (silero-style), then 1D convs."""

    def __init__(self, n_fft: int = 32, hop: int = 8) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.basis = nn.Conv1d(1, n_fft + 2, n_fft, stride=hop, bias=False)
        self.enc = nn.Conv1d(n_fft // 2 + 1, 8, 3, padding=1)
        self.down = nn.Conv1d(8, 8, 3, stride=2, padding=1, dilation=1)
        self.dil = nn.Conv1d(8, 4, 3, padding=2, dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)
        x = F.pad(x, (self.n_fft // 2, self.n_fft // 2), mode="reflect")
        spec = self.basis(x)
        half = self.n_fft // 2 + 1
        re, im = spec[:, :half], spec[:, half:]
        mag = torch.sqrt(re * re + im * im)
        y = torch.relu(self.enc(mag))
        y = torch.relu(self.down(y))
        return self.dil(y)


class UpsampleSkip(nn.Module):
    """UNet-ish: computed pads to a multiple of 8, upsample to a skip's size, ConvTranspose."""

    def __init__(self) -> None:
        super().__init__()
        self.inc = nn.Conv2d(3, 4, 3, padding=1)
        self.down = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.down2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.up_t = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)
        self.fuse = nn.Conv2d(16, 4, 3, padding=1)
        self.out = nn.Conv2d(8, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]
        ph = (8 - h % 8) % 8
        pw = (8 - w % 8) % 8
        x = F.pad(x, (0, pw, 0, ph))
        a = self.inc(x)
        b = self.down(a)
        c = self.down2(b)
        u = self.up_t(c)
        f = self.fuse(torch.cat((u, b), dim=1))
        f = F.interpolate(f, size=(a.shape[2], a.shape[3]), mode="nearest")
        g = F.interpolate(b, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.out(torch.cat((f, g[:, :4]), dim=1))


class CondNet(nn.Module):
    """A data-dependent branch (torch.cond): both branches contain convs."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Conv2d(3, 4, 3, padding=1)
        self.big = nn.Conv2d(4, 8, 3, padding=1)
        self.small = nn.Conv2d(4, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pre(x)

        def true_fn(t: torch.Tensor) -> torch.Tensor:
            return self.big(t)

        def false_fn(t: torch.Tensor) -> torch.Tensor:
            return self.small(t)

        return torch.cond(y.mean() > 0, true_fn, false_fn, (y,))


class ScriptIf(nn.Module):
    """Scripted control flow for the legacy exporter: an `if` on a tensor's size."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Conv2d(3, 4, 3, padding=1)
        self.big = nn.Conv2d(4, 8, 3, padding=1)
        self.small = nn.Conv2d(4, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pre(x)
        if y.sum() > 0:  # noqa: SIM108  (a statement, as scripted models write it)
            z = self.big(y)
        else:
            z = self.small(y)
        return z


class ScriptLoop(nn.Module):
    """Scripted loop (legacy exporter): a Loop whose trip count is computed from x's width."""

    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Conv2d(3, 4, 3, padding=1)
        self.step = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pre(x)
        for _ in range(x.size(3) // 4):
            y = torch.relu(self.step(y))
        return y


class Transposed(nn.Module):
    """ConvTranspose flavours: grouped, dilated, output_padding, 1D and 3D."""

    def __init__(self) -> None:
        super().__init__()
        self.t1 = nn.ConvTranspose2d(4, 8, 4, stride=2, padding=1, groups=2)
        self.t2 = nn.ConvTranspose2d(8, 4, 3, stride=3, padding=0, output_padding=2, dilation=2)
        self.c = nn.Conv2d(4, 4, 3, padding=2, dilation=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(self.t2(self.t1(x)))


class Conv3dNet(nn.Module):
    """Video-style 3D conv with an anisotropic stride, then a ConvTranspose3d."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv3d(2, 4, 3, stride=(1, 2, 2), padding=1)
        self.b = nn.ConvTranspose3d(4, 2, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


class NhwcIn(nn.Module):
    """Keras-style: NHWC input transposed to NCHW inside the model."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.b = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.c = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 3, 1, 2)
        y = self.c(self.b(torch.relu(self.a(x))))
        return y.permute(0, 2, 3, 1)


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x))) + x


class Functions(nn.Module):
    """Repeated blocks (exported as model-local functions by the legacy exporter)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.blocks = nn.Sequential(Block(4), Block(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


def init(m: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for p in m.parameters():
        nn.init.uniform_(p, -0.5, 0.5)
    return m.eval()


class TokenMixer(nn.Module):
    """SVTR/ViT-style neck (PP-OCRv4 rec): conv -> tokens -> LayerNorm -> Linear -> conv.

    Exported at opset 12 the LayerNorm is decomposed; onnxruntime fuses it back into a
    LayerNormalization node that the model's opset does not have, and Transpose+MatMul into
    com.microsoft.FusedMatMul; with NCHWc layout, the tokens' NHWC->NCHW Transpose becomes a
    channels-last ReorderInput.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 24, 3, stride=(2, 1), padding=1)
        self.norm = nn.LayerNorm(24)
        self.fc = nn.Linear(24, 24)
        self.head = nn.Conv2d(24, 4, 1)  # 24 channels: more than one NCHWc block, padded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        b, c, h, w = y.shape
        t = y.flatten(2).transpose(1, 2)
        t = self.fc(self.norm(t))
        attn = torch.softmax(t @ t.transpose(1, 2), dim=-1)
        t = attn @ t
        y = t.reshape(b, h, w, c).permute(0, 3, 1, 2)  # channels-last tokens back to NCHW
        return self.head(y)


class ConvLstm(nn.Module):
    """CRNN (ddddocr-style): convs, then the width as the sequence of an LSTM, then Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.rnn = nn.LSTM(8 * 4, 8, bidirectional=True)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.c2(torch.relu(self.c1(x))))
        b, c, h, w = y.shape
        seq = y.reshape(b, c * h, w).permute(2, 0, 1)
        out, _ = self.rnn(seq)
        return self.fc(out)


class TinyYolo(nn.Module):
    """YOLOv8-style (ultralytics export): C2f split, SPPF, nearest upsample x2, DFL head."""

    def __init__(self, c: int = 8, reg: int = 4) -> None:
        super().__init__()
        self.reg = reg
        self.stem = nn.Conv2d(3, c, 3, 2, 1)
        self.down = nn.Conv2d(c, 2 * c, 3, 2, 1)
        self.cv1 = nn.Conv2d(2 * c, 2 * c, 1)
        self.m = nn.Conv2d(c, c, 3, 1, 1)
        self.cv2 = nn.Conv2d(3 * c, 2 * c, 1)
        self.fuse = nn.Conv2d(3 * c, c, 1)
        self.box = nn.Conv2d(c, 4 * reg, 1)
        self.cls = nn.Conv2d(c, 2, 1)
        self.dfl = nn.Conv2d(reg, 1, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.sigmoid(self.stem(x))
        b = self.down(a)
        y = list(self.cv1(b).chunk(2, 1))  # C2f: Split, then a bottleneck on the last half
        y.append(self.m(y[-1]))
        b = self.cv2(torch.cat(y, 1))
        p = F.max_pool2d(b, 5, 1, 2)
        up = F.interpolate(p, scale_factor=2.0, mode="nearest")
        f = self.fuse(torch.cat((up, a), 1))
        n, _, h, w = f.shape
        box = self.box(f).view(n, 4, self.reg, h * w).transpose(2, 1).softmax(1)
        dist = self.dfl(box).view(n, 4, h * w)
        gy, gx = torch.meshgrid(
            torch.arange(h, dtype=torch.float32),
            torch.arange(w, dtype=torch.float32),
            indexing="ij",
        )
        anchors = torch.stack((gx, gy), 0).view(1, 2, h * w) + 0.5
        xy = anchors - dist[:, :2]
        return torch.cat((xy, dist[:, 2:], self.cls(f).view(n, 2, h * w).sigmoid()), 1)
