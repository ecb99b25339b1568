/* encoder.h: the advance's quadrature encoder (A on GP12, B on GP13), decoded ×4 in the
 * GPIO edge interrupt. 1 µm per count (a magnetic linear scale): 20 000 counts/s at
 * 20 mm/s. A transition that changes both channels at once is a lost count: the reading
 * is untrusted (ENCODER fault) until reset. */
#ifndef ND_ENCODER_H
#define ND_ENCODER_H

#define ENC_NM_PER_COUNT 1000

void encoder_init(void);

#endif /* ND_ENCODER_H */
