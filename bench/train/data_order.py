"""The batches `moe train` draws, reproduced in Python so the PyTorch peer trains on the same sequences
in the same order: a port of core/train/data_order.cpp (DataOrder) and of the std::mt19937_64 it
draws from (the C++ standard fixes that generator's every output, so this port is exact).

Micro-batch j holds positions j*B .. j*B+B-1 of an endless stream of epochs; epoch e is the dataset
in order, or (shuffled) a Fisher-Yates permutation drawn from mt19937_64(seed ^ (golden * (e + 1)))
with index rng() % (i + 1) for i = N-1 .. 1."""

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


class MT19937_64:
    """std::mt19937_64 (the parameters of [rand.predef])."""

    N, M = 312, 156
    MATRIX_A = 0xB5026F5AA96619E9
    UPPER, LOWER = 0xFFFFFFFF80000000, 0x7FFFFFFF

    def __init__(self, seed):
        self.mt = [seed & MASK64]
        for i in range(1, self.N):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & MASK64)
        self.index = self.N

    def _twist(self):
        mt, n, m = self.mt, self.N, self.M
        for i in range(n):
            y = (mt[i] & self.UPPER) | (mt[(i + 1) % n] & self.LOWER)
            mt[i] = mt[(i + m) % n] ^ (y >> 1) ^ (self.MATRIX_A if y & 1 else 0)
        self.index = 0

    def __call__(self):
        if self.index >= self.N:
            self._twist()
        y = self.mt[self.index]
        self.index += 1
        y ^= (y >> 29) & 0x5555555555555555
        y ^= (y << 17) & 0x71D67FFFEDA60000
        y ^= (y << 37) & 0xFFF7EEE000000000
        y ^= y >> 43
        return y & MASK64


class DataOrder:
    """core/train/data_order.cpp: which sequences form micro-batch `index`."""

    def __init__(self, num_sequences, batch_size, shuffle, seed):
        self.n, self.batch_size, self.shuffle, self.seed = num_sequences, batch_size, shuffle, seed & MASK64
        self._epoch, self._perm = -1, None

    def epoch(self, e):
        if e != self._epoch:
            perm = list(range(self.n))
            if self.shuffle:
                rng = MT19937_64(self.seed ^ ((GOLDEN * (e + 1)) & MASK64))
                for i in range(self.n - 1, 0, -1):
                    j = rng() % (i + 1)
                    perm[i], perm[j] = perm[j], perm[i]
            self._epoch, self._perm = e, perm
        return self._perm

    def batch(self, index):
        rows = []
        for k in range(self.batch_size):
            position = index * self.batch_size + k
            rows.append(self.epoch(position // self.n)[position % self.n])
        return rows


if __name__ == "__main__":
    # The C++ standard's check value: the 10000th output of a default-constructed mt19937_64.
    g = MT19937_64(5489)
    for _ in range(9999):
        g()
    value = g()
    assert value == 9981545732273789042, value
    print("mt19937_64 matches the standard's check value")
