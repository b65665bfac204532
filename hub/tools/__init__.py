"""Tools for people, not production code: `hub bench` (`bench`) and the pipeline's A/B comparison (`bench_ab`)
to measure the hub, `hub simulate` (`simulate`) and the simulated agency traffic it, the bench and `hub up
--demo` send (`traffic`), and the small scenario `hub up --demo` publishes (`demo`). The runtime, the pipeline
and the case store never import them; the CLI only registers their commands and starts the demo.
"""
