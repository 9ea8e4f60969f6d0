from dynshift_agents.cli import main

main()
