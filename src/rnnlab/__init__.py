"""rnnlab: config-driven experiments on the linear RNN of lab 8."""
