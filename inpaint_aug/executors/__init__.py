"""Executors other than the local engine: where the planned chunks run.

:mod:`inpaint_aug.executors.ray` runs them on a Ray Data actor pool (one model per actor),
imported only with ``--executor ray``; :mod:`inpaint_aug.executors.ray_worker` is the actor.
"""
