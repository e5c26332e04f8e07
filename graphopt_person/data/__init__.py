"""The person workload's data: synthetic indoor frames with people, and their ground truth.

No real person data set is available, so the detector is calibrated, trained
and measured on rendered frames: :func:`render_scene` draws the frame of one
seed, :func:`generate_scenes` the frames of a split, and :func:`scene_seeds`
says which seeds a split holds. See :mod:`.scenes` for what a frame contains.
"""

from .scenes import PersonInstance, Scene, generate_scenes, render_scene, scene_seeds

__all__ = ["PersonInstance", "Scene", "generate_scenes", "render_scene", "scene_seeds"]
