/* commands.h: the handler of every valid frame from the host (commands.c). It reads and
 * changes the device (device.h); the device knows nothing of it: core.c hands the handler
 * to the link at boot. */
#ifndef ND_COMMANDS_H
#define ND_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

void nd_commands_init(void);
void nd_commands_on_frame(uint8_t msg_id, uint8_t flags, uint16_t seq, const uint8_t *payload,
                          size_t len);

#endif
