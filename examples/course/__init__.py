"""The course's lessons, one script each, as a student runs them with mentor's names.

Each `lessonN_*.py` runs that lesson's workflow on the shared data sets (`$MENTOR_DATA`) and
checks its key outcome (an accuracy floor, a file written, a prediction right). Every script
has `run(quick=False, out=None) -> dict` (the figures it measured; `quick=True` is the small
version the tests run in seconds) and `main(argv)`, which prints the figures and exits 1 when
an outcome falls short. Run one with `python -m examples.course.lesson1_pets`; the tests in
`tests/course/` run each with `quick=True`.
"""
