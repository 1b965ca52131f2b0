/* labels: being written */
