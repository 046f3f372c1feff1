"""Ingest: where messages enter the hub. Every source is an ``async with`` owner that yields
``Batch``es with ``async for``; the hub never knows which transport fed it.

Sources available: ``mqtt`` (the seam in ``l4mon.ingest.mqtt``, with gmqtt or aiomqtt behind it)
and ``feed`` (in-process, for the demo's simulated fleet).
"""
