/* cpu/cpu-backend: being written */
