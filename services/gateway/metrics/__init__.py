"""Which way the metrics of a model version point, for clients that compare versions (the
console marks the best one and labels its chart's axis by it)."""
