"""memsweep's analysis package: read a results folder into pandas and map where memorization appears.

For now it only loads the tables; maps, plots and the report build on this.
"""
