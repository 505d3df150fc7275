"""Project 1: how much do architecture and training choices matter on MNIST when everything else is controlled?"""
