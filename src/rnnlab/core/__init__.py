"""Layer 1, the maths (numpy only): the lab's data (``data``), the linear RNN's
forward pass, BPTT and closed form (``rnn``), the numerical gradient check
(``gradcheck``), the optimisers (``optim``), training (``train``) and many starts at once
(``basin``). Nothing here knows about configs, runs or files."""
