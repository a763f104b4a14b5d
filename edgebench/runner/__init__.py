"""`edgebench run`: the orchestrating process, which never loads gevent.

run.run applies the real-API rules, starts the emulator and Locust as child
processes (processes), follows the records as they grow (progress), and ends with
the analysis and its verdict.
"""
