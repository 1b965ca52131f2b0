/* preprocess: being written */
