"""Project 2: what do autoencoders and a rotation-prediction proxy task learn, and how far does it transfer?"""
