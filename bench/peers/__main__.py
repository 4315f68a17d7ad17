from bench.peers.driver import main

main()
