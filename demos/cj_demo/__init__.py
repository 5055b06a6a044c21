"""`pdm run cj-demo`: a comparative-judgement session through the service.

It proves that judgement variation survives (no cached "super-rater") and that server-side
essay order turns a judge's position bias into measurable, unbiased noise.
"""
