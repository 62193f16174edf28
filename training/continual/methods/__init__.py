"""The continual methods, one module per family: baas (the bank and its router), sequential (naive, multitask
and the base of every method that trains one learner on the tasks in turn), ewc, peft (the PEFT adapters),
olora, full_ft, and reference (zero_shot, st_ft). The registry of their keys is continual/registry.py."""
