"""Browser viewer: ``kaocap serve`` shows the video with the overlay, a 3D head whose 52 morph
targets and rotation follow the face, and live blendshape bars.

The page is built from ``web/`` (three.js from npm, bundled by vite) into ``static/`` when the
package is built with Node.js present (:mod:`kaocap.viewer._build`); ``head.glb`` is made by
``scripts/make_viewer_head.py`` (sources and licences in ``head.glb.md``).

>>> from kaocap.viewer import serve
>>> serve("clip.mp4", port=8080, on_ready=print)          # doctest: +SKIP
"""

from __future__ import annotations

from kaocap.viewer.job import serve
from kaocap.viewer.server import ViewerNotBuilt, ViewerServer

__all__ = ["ViewerNotBuilt", "ViewerServer", "serve"]
