"""Headless OpenGL drawing of the ICT head with moderngl (EGL, Mesa llvmpipe on the CPU).

Camera: a pinhole at the origin of kaocap's camera frame (x right, y up, z towards the viewer,
cm), looking down -z, focal length ``focal_px`` in pixels, principal point at the image centre.
A camera-frame point (X, Y, Z) lands on image px ``(W/2 + f X / -Z, H/2 - f Y / -Z)`` with the
origin at the top-left corner of the top-left pixel (kaocap's convention): GL's viewport maps
NDC -1..1 onto the pixel edges 0..W, so no half-pixel shift is needed.

Anisotropic texture filtering is never enabled (pathological on llvmpipe), nor trilinear
filtering (also slow there): the noise texture samples one mip level, the face map none.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from kaocap.data._render import shaders
from kaocap.data._render.ict import IctModel
from kaocap.errors import KaocapError

logger = logging.getLogger(__name__)

NEAR_CM = 5.0
FAR_CM = 2000.0


class RenderError(KaocapError):
    """OpenGL (moderngl + EGL) is not available or failed."""


def projection(focal_px: float, width: int, height: int, near: float = NEAR_CM, far: float = FAR_CM) -> NDArray[np.float32]:
    """(4, 4) OpenGL projection of a centred pinhole camera with focal length ``focal_px``."""
    p = np.zeros((4, 4), np.float32)
    p[0, 0], p[1, 1] = 2 * focal_px / width, 2 * focal_px / height
    p[2, 2], p[2, 3] = -(far + near) / (far - near), -2 * far * near / (far - near)
    p[3, 2] = -1.0
    return p


def linear_depth(depth: NDArray[np.float32], near: float = NEAR_CM, far: float = FAR_CM) -> NDArray[np.float32]:
    """Camera-frame Z (cm, negative in front of the camera) of window depths 0..1."""
    ndc = 2.0 * depth.astype(np.float64) - 1.0
    return (-2.0 * far * near / ((far + near) - ndc * (far - near))).astype(np.float32)


def _context():
    try:
        import moderngl
    except ImportError as exc:
        raise RenderError("rendering needs moderngl: pip install 'kaocap[train]'") from exc
    try:
        return moderngl.create_standalone_context(backend="egl")
    except Exception as exc:  # moderngl raises plain Exception when EGL is missing
        raise RenderError(f"no headless OpenGL context (EGL, Mesa's libegl1/libgl1-mesa-dri): {exc}") from exc


class GlRenderer:
    """Draws posed ICT heads into an RGBA image and a depth map.

    static: (Vd, 9) float32 per-vertex ``ref xyz, material, ao, noise x4`` (:mod:`.shaders`).
    noise, facemap: (h, w, 4) uint8 textures. samples: MSAA samples (0 = off).
    """

    def __init__(self, model: IctModel, size: int, static: NDArray[np.float32], noise: NDArray[np.uint8],
                 facemap: NDArray[np.uint8], *, samples: int = 4) -> None:  # fmt: skip
        import moderngl

        self.size = size
        self.triangles = model.triangles
        self.ctx = ctx = _context()
        self.program = ctx.program(vertex_shader=shaders.VERTEX, fragment_shader=shaders.FRAGMENT)
        self._dynamic = ctx.buffer(reserve=model.num_vertices * 6 * 4, dynamic=True)
        self._static = ctx.buffer(np.ascontiguousarray(static, np.float32).tobytes())
        self._index = ctx.buffer(model.triangles.astype(np.int32).tobytes())
        self._skin = ctx.buffer(reserve=model.num_vertices * 4 * 4, dynamic=True)
        self.vao = ctx.vertex_array(self.program, [
            (self._dynamic, "3f 3f", "in_pos", "in_nrm"),
            (self._static, "3f 1f 1f 4f", "in_ref", "in_mat", "in_ao", "in_noise"),
            (self._skin, "4f", "in_skin"),
        ], index_buffer=self._index, index_element_size=4)  # fmt: skip
        self._moderngl = moderngl
        # Trilinear filtering costs llvmpipe dearly: the noise uses one mip level per lookup, the
        # face map (smooth masks at about the render's resolution) no mipmaps at all.
        self._noise = self._texture(noise, 0, repeat=True, mipmaps=True)
        self._facemap = self._texture(facemap, 1, repeat=False, mipmaps=False)
        self.set_uniforms({"u_noise": 0, "u_facemap": 1})
        samples = min(samples, ctx.max_samples)
        self._ms = ctx.framebuffer(ctx.renderbuffer((size, size), 4, samples=samples),
                                   ctx.depth_renderbuffer((size, size), samples=samples))  # fmt: skip
        self._out = ctx.framebuffer(ctx.renderbuffer((size, size), 4), ctx.depth_renderbuffer((size, size)))
        self._id_program = ctx.program(vertex_shader=shaders.ID_VERTEX, fragment_shader=shaders.ID_FRAGMENT)
        self._id_vao = ctx.vertex_array(self._id_program, [(self._dynamic, "3f 12x", "in_pos")],
                                        index_buffer=self._index, index_element_size=4)  # fmt: skip
        self._id_fbo = ctx.framebuffer(ctx.renderbuffer((size, size), 1, dtype="i4"),
                                       ctx.depth_renderbuffer((size, size)))  # fmt: skip
        logger.info("OpenGL: %s, %d MSAA samples", ctx.info.get("GL_RENDERER", "?"), samples)

    def _texture(self, image: NDArray[np.uint8], unit: int, *, repeat: bool, mipmaps: bool):
        h, w = image.shape[:2]
        tex = self.ctx.texture((w, h), 4, np.ascontiguousarray(image[::-1]).tobytes())
        tex.repeat_x = tex.repeat_y = repeat
        if mipmaps:
            tex.build_mipmaps()
        tex.filter = (self._moderngl.LINEAR_MIPMAP_NEAREST if mipmaps else self._moderngl.LINEAR, self._moderngl.LINEAR)
        tex.use(unit)
        return tex

    def set_uniforms(self, uniforms: Mapping[str, object]) -> None:
        """Set shader uniforms by name (values: floats, tuples, or (4, 4) matrices)."""
        for name, value in uniforms.items():
            if name not in self.program:
                continue
            if isinstance(value, np.ndarray) and value.shape == (4, 4):
                self.program[name].write(np.ascontiguousarray(value.T, np.float32).tobytes())
            else:
                self.program[name].value = value

    def set_skin(self, skin: NDArray[np.float32]) -> None:
        """Per-identity (Vd, 4) skin albedo and hair coverage (:func:`.skin.skin_attributes`)."""
        self._skin.write(np.ascontiguousarray(skin, np.float32).tobytes())

    def _upload(self, vertices: NDArray[np.float32], normals: NDArray[np.float32]) -> None:
        self._dynamic.write(np.concatenate([vertices, normals], axis=1).astype(np.float32).tobytes())

    def draw(self, vertices: NDArray[np.float32], normals: NDArray[np.float32], model_view: NDArray,
             proj: NDArray, ranges: Sequence[tuple[int, int]] | None = None) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:  # fmt: skip
        """RGBA (S, S, 4) uint8 (alpha 0 = background) and window depth (S, S) float32 0..1,
        both top row first, of (Vd, 3) model-frame ``vertices`` with their ``normals``.
        ``ranges``: (first, end) triangle ranges to draw, in this order (None = all)."""
        self._upload(vertices, normals)
        self.set_uniforms({"u_model_view": model_view, "u_proj": proj})
        ctx = self.ctx
        self._ms.use()
        ctx.enable(self._moderngl.DEPTH_TEST)
        ctx.disable(self._moderngl.CULL_FACE)
        ctx.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
        for first, end in ranges if ranges is not None else [(0, len(self.triangles))]:
            self.vao.render(vertices=3 * (end - first), first=3 * first)
        ctx.copy_framebuffer(self._out, self._ms)
        s = self.size
        rgba = np.frombuffer(self._out.read(components=4), np.uint8).reshape(s, s, 4)[::-1]
        depth = np.frombuffer(self._out.read(components=1, attachment=-1, dtype="f4"), np.float32).reshape(s, s)[::-1]
        return np.ascontiguousarray(rgba), np.ascontiguousarray(depth)

    def primitive_ids(self, vertices: NDArray[np.float32], model_view: NDArray, proj: NDArray) -> NDArray[np.int32]:
        """(S, S) int32 triangle index under each pixel centre (-1 = background), top row first."""
        self._upload(vertices, np.zeros_like(vertices))
        for name, value in (("u_model_view", model_view), ("u_proj", proj)):
            self._id_program[name].write(np.ascontiguousarray(value.T, np.float32).tobytes())
        self._id_fbo.use()
        self.ctx.enable(self._moderngl.DEPTH_TEST)
        self._id_fbo.clear(depth=1.0)
        self._id_vao.render()
        s = self.size
        ids = np.frombuffer(self._id_fbo.read(components=1, dtype="i4"), np.int32).reshape(s, s)[::-1]
        return ids.astype(np.int32) - 1

    def depth_map(self, vertices: NDArray[np.float32], model_view: NDArray, proj: NDArray, size: int) -> NDArray[np.float32]:
        """(size, size) window depth 0..1 (top row first) of every triangle, for baking."""
        if getattr(self, "_bake_fbo", None) is None or self._bake_fbo.size != (size, size):
            self._bake_fbo = self.ctx.framebuffer(self.ctx.renderbuffer((size, size), 1, dtype="i4"),
                                                  self.ctx.depth_renderbuffer((size, size)))  # fmt: skip
        self._upload(vertices, np.zeros_like(vertices))
        for name, value in (("u_model_view", model_view), ("u_proj", proj)):
            self._id_program[name].write(np.ascontiguousarray(value.T, np.float32).tobytes())
        self._bake_fbo.use()
        self.ctx.enable(self._moderngl.DEPTH_TEST)
        self._bake_fbo.clear(depth=1.0)
        self._id_vao.render()
        raw = self._bake_fbo.read(components=1, attachment=-1, dtype="f4")
        return np.frombuffer(raw, np.float32).reshape(size, size)[::-1].copy()

    def release(self) -> None:
        self.ctx.release()
