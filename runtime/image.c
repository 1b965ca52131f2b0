/* image: being written */
