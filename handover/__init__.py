"""Handover analysis: serving-cell changes on each link, their interruption and class
(success, failure, ping-pong, too frequent), and failover between a vehicle's links.

``detect`` holds the per-link tracker the hub runs on every sample (live and replay alike);
``intersections`` tags each handover with the intersection zone it happened in and keeps the
per-intersection figures; ``settings`` their configuration. docs/handover.md defines the
measures.
"""
