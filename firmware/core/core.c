/* core.c: the core's entry point at boot — the device, the link and the command handlers
 * wired together. The one file that knows all three, so that the others depend one way:
 * commands -> device -> link. */
#include "commands.h"
#include "device.h"
#include "nd_core.h"

void nd_core_init(const struct nd_board *board)
{
    nd_dev_init(board, nd_commands_on_frame);
    nd_commands_init();
}
