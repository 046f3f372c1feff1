"""Handover analysis: serving-cell changes on each link, their interruption and class
(success, failure, ping-pong, too frequent), and failover between a vehicle's links.

``detect`` holds the per-link tracker the hub runs on every sample (live and replay alike);
docs/handover.md defines the measures. Tagging with intersection zones and the per-intersection
figures are still to come (issue 5).
"""
