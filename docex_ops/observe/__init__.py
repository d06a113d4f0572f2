"""What a DBA looks at: one set-based snapshot of the fleet, rendered as Prometheus
metrics (``docex-ops metrics``) or as a one-page HTML report (``docex-ops report``)."""
