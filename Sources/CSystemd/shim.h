#ifndef QSENT_CSYSTEMD_SHIM_H
#define QSENT_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#endif
