"""Compatibility module: the scene renderer is now the :mod:`graphopt_person.data` package.

Kept so that existing ``from graphopt_person.scenes import ...`` lines keep
working; new code imports from :mod:`graphopt_person.data`.
"""

from .data import PersonInstance, Scene, generate_scenes, render_scene, scene_seeds

__all__ = ["PersonInstance", "Scene", "generate_scenes", "render_scene", "scene_seeds"]
