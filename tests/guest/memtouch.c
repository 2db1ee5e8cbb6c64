/* memtouch: the test guest's workload (PID 1's child in the vrm test initramfs).
 *
 * Fills MB mebibytes with a pattern, then rewrites RATE pages per second in a fixed order, and
 * every VERIFY seconds checks that every page holds exactly what the deterministic write sequence
 * says it must. Because each rewrite is a function of a step counter kept in the same memory, a
 * page whose update was lost (a stale page after a migration) or corrupted is detected.
 *
 * Console lines (on /dev/console, the serial port):
 *   memtouch: ready mb=M rate=R        after the fill
 *   memtouch: verify ok step=S         after each successful check
 *   memtouch: CORRUPT page=P ...       on the first mismatch (and the program stops writing)
 *
 * Usage: memtouch MB RATE_PAGES_PER_SEC VERIFY_SECONDS
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096u
#define WORDS (PAGE / sizeof(uint64_t))

static uint64_t mix(uint64_t page, uint64_t round) {
  uint64_t x = page * 0x9E3779B97F4A7C15ull ^ (round + 1) * 0xC2B2AE3D27D4EB4Full;
  x ^= x >> 31;
  return x | 1; /* never zero: zero pages would not be migrated as data */
}

static void fill(uint64_t* p, uint64_t page, uint64_t round) {
  uint64_t v = mix(page, round);
  for (unsigned i = 0; i < WORDS; ++i) p[i] = v + i;
}

static double nowS(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* State lives in the filled memory region's own allocation so it migrates with it. */
struct State {
  uint64_t step; /* writes done after the fill */
};

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: memtouch MB RATE VERIFY_S\n");
    return 2;
  }
  const uint64_t pages = strtoull(argv[1], 0, 10) * 256;
  const double rate = strtod(argv[2], 0);
  const double verifyS = strtod(argv[3], 0);
  if (pages == 0) return 2;
  uint64_t* mem = malloc(pages * PAGE);
  struct State* st = malloc(sizeof *st);
  if (!mem || !st) {
    printf("memtouch: out of memory\n");
    return 1;
  }
  for (uint64_t p = 0; p < pages; ++p) fill(mem + p * WORDS, p, 0);
  st->step = 0;
  printf("memtouch: ready mb=%s rate=%.0f\n", argv[1], rate);
  fflush(stdout);

  const double tick = 0.01;
  double start = nowS();
  double nextVerify = start + verifyS;
  uint64_t budgetDone = 0;
  for (;;) {
    double t = nowS();
    if (rate > 0) {
      uint64_t due = (uint64_t)((t - start) * rate);
      /* Do not try to catch up more than one second of writes after a pause. */
      if (due > budgetDone + (uint64_t)rate) budgetDone = due - (uint64_t)rate;
      while (budgetDone < due) {
        uint64_t k = st->step;
        uint64_t page = k % pages;
        fill(mem + page * WORDS, page, k / pages + 1);
        st->step = k + 1;
        ++budgetDone;
      }
    }
    if (verifyS > 0 && t >= nextVerify) {
      uint64_t k = st->step;
      for (uint64_t p = 0; p < pages; ++p) {
        /* Page p was last written in round (k - 1 - p) / pages + 1 if k > p, else the fill. */
        uint64_t round = k > p ? (k - 1 - p) / pages + 1 : 0;
        uint64_t v = mix(p, round);
        const uint64_t* w = mem + p * WORDS;
        for (unsigned i = 0; i < WORDS; ++i) {
          if (w[i] != v + i) {
            printf("memtouch: CORRUPT page=%llu word=%u step=%llu\n", (unsigned long long)p, i,
                   (unsigned long long)k);
            fflush(stdout);
            for (;;) {
              struct timespec z = {3600, 0};
              nanosleep(&z, 0);
            }
          }
        }
      }
      printf("memtouch: verify ok step=%llu\n", (unsigned long long)k);
      fflush(stdout);
      nextVerify = nowS() + verifyS;
    }
    struct timespec ts = {0, (long)(tick * 1e9)};
    nanosleep(&ts, 0);
  }
}
