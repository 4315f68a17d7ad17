module informerd.local/bench/gopeer

go 1.26.0
