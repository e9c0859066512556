/* Sorts x86-64 instructions for the call-graph walker (callgraph._X86Walker).
 *
 * The walker looks at a few instructions of a function (calls, branches out of it, what
 * refers to rip, indirect branches); most only clear its "register just loaded" state,
 * and some leave it alone. `scan` decodes a run of instructions and lists the ones the
 * walker must see, each with the last instruction before it that clears the state. The
 * common encodings (legacy prefixes, REX, one-byte, 0F, 0F38 and 0F3A opcodes of a
 * whitelist) are decoded here, by tables, into their length and the class `classify`
 * would give capstone's text of them; anything else, or anything in doubt, is decoded
 * by capstone itself (the library, handle and record layout of the Python binding,
 * through `init`), one instruction at a time: x86 decoding carries no state from one
 * instruction to the next. `settle` then does what the walker would with the listed
 * instructions that touch only the call graph's tables (branches, references, numbers
 * that may be addresses), up to the next one the walker must read itself. `text` gives
 * capstone's text of one instruction on demand, and `compare` checks the tables against
 * capstone (tests/test_callgraph_fast.py). `function` makes a whole function's summary
 * from those, reading itself the few instructions the walker would (indirect branches,
 * compares), where no import address is pending; `walk` asks it before the graph.
 * `pointed`, the walk's search through data pointers, is the one part of any machine's
 * walk here.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef size_t (*disasm_fn)(size_t, const uint8_t *, size_t, uint64_t, size_t, void **);
typedef void (*free_fn)(void *, size_t);
typedef int (*errno_fn)(size_t);

static disasm_fn cs_disasm_p;
static free_fn cs_free_p;
static errno_fn cs_errno_p;
static Py_ssize_t record_size, address_at, size_at, mnemonic_at, ops_at;

static PyObject *init(PyObject *self, PyObject *args) {
    unsigned long long disasm, free_, errno_;
    if (!PyArg_ParseTuple(args, "KKKnnnnn", &disasm, &free_, &errno_, &record_size,
                          &address_at, &size_at, &mnemonic_at, &ops_at))
        return NULL;
    cs_disasm_p = (disasm_fn)(uintptr_t)disasm;
    cs_free_p = (free_fn)(uintptr_t)free_;
    cs_errno_p = (errno_fn)(uintptr_t)errno_;
    Py_RETURN_NONE;
}

/* BRANCH, BRANCH_CLEARS, REFERS and MOVE are the event tags Python reads (value * 4 + tag) */
enum { BRANCH, BRANCH_CLEARS, REFERS, MOVE, CLEARS, NEUTRAL, SEEN };

/* The registers named with an "r" that `mov reg, [rip + N]` can load (the walker keeps
 * that name: `_operand`). A MOVE event's value is target * 64 + the register's index + 1
 * here, or + 0 where the first operand is no such register. */
static const char *const registers[] = {
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
    "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d", "r15d",
    "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w",
    "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b",
};
#define REGISTERS (sizeof registers / sizeof registers[0])
#define MOVE_BELOW ((uint64_t)1 << 55) /* a MOVE's target * 64 * 4 must fit */

/* The address `[rip + N]` names in `ops` (`next` is the next instruction's), as
 * callgraph._RIP's first match gives it; 0 where that pattern does not start at the
 * first "[rip " (Python decides then). */
static int rip_target(const char *ops, uint64_t next, uint64_t *target) {
    const char *at = strstr(ops, "[rip ");
    if (at == NULL)
        return 0;
    char sign = at[5];
    if ((sign != '+' && sign != '-') || at[6] != ' ')
        return 0;
    const char *digits = at + 7;
    int hex = digits[0] == '0' && digits[1] == 'x';
    if (hex)
        digits += 2;
    size_t count = strspn(digits, hex ? "0123456789abcdef" : "0123456789");
    if (count == 0 || count > 15 || digits[count] != ']' || (!hex && count > 1 && *digits == '0'))
        return 0;
    uint64_t displacement = strtoull(digits, NULL, hex ? 16 : 10);
    if (sign == '-' ? displacement > next : displacement > UINT64_MAX - next)
        return 0; /* Python's numbers do not wrap: it decides */
    *target = sign == '+' ? next + displacement : next - displacement;
    return (*target >> 61) == 0;
}

/* The numbers a position-dependent file's instruction names that may be addresses
 * (callgraph._HEX's matches in its operands, as `_X86Walker._absolute` reads them): those
 * at or above 0x1000 or inside [low, high), the span of the file's code; the walker
 * checks each (an ABSOLUTE event). */
#define MAX_ABSOLUTE 4
typedef struct {
    uint64_t low, high;              /* in: the code's span */
    int count;                       /* out: how many values */
    int branch;                      /* out: the mnemonic is call or j* (no prefix) */
    uint64_t values[MAX_ABSOLUTE];
} absolutes;

/* Fills `found` from `ops`; 0 where Python decides (too many numbers, or one that is
 * not below 2**61, which an event cannot carry). */
static int absolute_values(const char *ops, absolutes *found) {
    found->count = 0;
    for (const char *at = strstr(ops, "0x"); at != NULL; at = strstr(at, "0x")) {
        const char *digits = at + 2;
        size_t count = strspn(digits, "0123456789abcdef");
        if (count == 0) {
            at++;
            continue;
        }
        if (count > 16)
            return 0;
        uint64_t value = strtoull(digits, NULL, 16);
        at = digits + count;
        if (value < 0x1000 && (value < found->low || value >= found->high))
            continue; /* neither data nor code: the walker does nothing with it */
        if (value >> 61 || found->count == MAX_ABSOLUTE)
            return 0;
        found->values[found->count++] = value;
    }
    return 1;
}

/* What the walker does with one instruction while no import address is pending:
 * nothing (NEUTRAL), clear its loaded register (CLEARS), branch to *target (a direct
 * call or a jump out of the function) and clear it or not, clear it and refer to
 * *target (`lea reg, [rip + N]`, or any other instruction with that operand but `mov`,
 * `cmp` and `test`: REFERS), the same for a `mov` (MOVE: *target is as the tag says),
 * or look at it (SEEN). The walker's `_step`, `_instruction` and `_operand` in C. */
static int classify(const char *record, absolutes *absolute, uint64_t start, uint64_t end,
                    uint64_t *target) {
    const char *mnemonic = record + mnemonic_at, *ops = record + ops_at;
    int rip = strstr(ops, "rip") != NULL;
    if (absolute != NULL) {
        absolute->count = 0;
        absolute->branch = strcmp(mnemonic, "call") == 0 || mnemonic[0] == 'j';
        if (strstr(ops, "0x") != NULL && (mnemonic[0] == '\0' || !absolute_values(ops, absolute)))
            return SEEN;
    }
    if (mnemonic[0] == '\0')
        return rip ? SEEN : CLEARS;
    if (!rip && strchr("cjlbnt", mnemonic[0]) == NULL)
        return CLEARS;
    const char *space = strrchr(mnemonic, ' ');
    const char *name = space ? space + 1 : mnemonic;
    int call = strcmp(name, "call") == 0;
    if (call || name[0] == 'j' || strncmp(name, "loop", 4) == 0) {
        if (ops[0] != '0' || ops[1] != 'x')
            return SEEN;
        size_t digits = strspn(ops + 2, "0123456789abcdef");
        if (digits == 0 || digits > 16 || ops[2 + digits] != '\0')
            return SEEN; /* not a plain 64-bit number: Python decides */
        *target = strtoull(ops + 2, NULL, 16);
        if (*target >> 61)
            return SEEN; /* not an address (and target * 4 must fit) */
        int clears = call || strcmp(name, "jmp") == 0;
        if (call || *target < start || *target >= end)
            return clears ? BRANCH_CLEARS : BRANCH;
        return clears ? CLEARS : NEUTRAL;
    }
    if (rip) {
        uint64_t address;
        uint16_t size;
        memcpy(&address, record + address_at, sizeof address);
        memcpy(&size, record + size_at, sizeof size);
        if (strcmp(name, "cmp") == 0 || strcmp(name, "test") == 0 ||
            address + size < address || !rip_target(ops, address + size, target))
            return SEEN;
        if (strcmp(name, "mov") != 0)
            return REFERS;
        size_t code = 0, length = strcspn(ops, ",");
        if (ops[0] == 'r') {
            if (ops[length] != ',')
                return SEEN;
            while (code < REGISTERS && (strlen(registers[code]) != length ||
                                        strncmp(registers[code], ops, length) != 0))
                code++;
            if (code++ == REGISTERS)
                return SEEN; /* not a register of the table: Python decides */
        }
        if (*target >= MOVE_BELOW)
            return SEEN;
        *target = *target << 6 | code;
        return MOVE;
    }
    return strcmp(name, "test") == 0 || strcmp(name, "cmp") == 0 ? NEUTRAL : CLEARS;
}

/* ---- The table decoder ----------------------------------------------------------------
 * A form letter per opcode says what follows it and what the instruction is:
 *   .  not whitelisted: capstone decides
 *   o  nothing follows                    s  nothing follows; an F3 (rep) prefix may be
 *   m  ModRM                              M  ModRM, 1-byte immediate
 *   Z  ModRM, 2/4-byte immediate (66)     b  1-byte immediate
 *   z  2/4-byte immediate (66)            w  2-byte immediate
 *   q  4/8-byte immediate (REX.W: mov r, imm)
 *   t  ModRM, test or cmp (NEUTRAL)       u  test/cmp, 1-byte imm   v  test/cmp, 2/4-byte imm
 *   l  lea (ModRM, memory only)           e  endbr32/64 (ModRM FB or FA only)
 *   j  jcc/loop/jrcxz rel8   J  jmp rel8   r  jcc rel32   K  jmp rel32   C  call rel32
 *   g  ModRM.reg decides (`group`)
 * All other instructions clear the walker's register. One with a rip-relative operand is
 * one the walker sees if it is a cmp or test (or the operand is `[rip]`), a MOVE if it is
 * a mov (88-8B, C6, C7), else one that REFERS to its target, as `classify` has it. */
static const char one_byte[256 + 1] =
    "mmmmbz..mmmmbz.." /* 0x: add, or (06 07 0E invalid in 64-bit mode; 0F escape) */
    "mmmmbz..mmmmbz.." /* 1x: adc, sbb */
    "mmmmbz..mmmmbz.." /* 2x: and, sub (26 2E segment prefixes) */
    "mmmmbz..ttttuv.." /* 3x: xor, cmp */
    "................" /* 4x: REX (a second one: capstone) */
    "oooooooooooooooo" /* 5x: push, pop */
    "...m....zZbM...." /* 6x: movsxd, push imm, imul imm */
    "jjjjjjjjjjjjjjjj" /* 7x: jcc rel8 */
    "gg.gttmmmmmm.l.g" /* 8x: group 1, test, xchg, mov, lea, pop */
    "oooooooooo..oooo" /* 9x: xchg/nop, cdqe, cqo, pushf, popf, sahf, lahf */
    "....ss..uvss...." /* Ax: movs, test, stos */
    "bbbbbbbbqqqqqqqq" /* Bx: mov r, imm */
    "ggwo..gg.o..ob.." /* Cx: shifts, ret imm, ret, mov imm, leave, int3, int */
    "gggg....gggggggg" /* Dx: shifts, x87 */
    "jjjj....CK.J...." /* Ex: loop, jrcxz, call, jmp */
    "....ooggoooooogg" /* Fx: hlt, cmc, group 3, clc..std, group 4/5 */
    ;

/* 0F xx: the form, and which mandatory prefix each opcode is whitelisted with, a hex
 * digit of 1 (none), 2 (66), 4 (F3), 8 (F2) */
static const char two_byte[256 + 1] =
    ".....o.....o...." /* 0x: syscall, ud2 */
    "mm..mm..g.....eg" /* 1x: movups.., unpck, prefetch, endbr, nop */
    "........mmm.mmmm" /* 2x: movaps, cvt, ucomis, comis */
    ".o.............." /* 3x: rdtsc (38 3A: three-byte) */
    "mmmmmmmmmmmmmmmm" /* 4x: cmovcc */
    ".mmmmmmmmmmmmmmm" /* 5x: sqrt .. max */
    "mmmmmmmmmmmmmmmm" /* 6x: punpck .. movdq */
    "Mgggmmmo......mm" /* 7x: pshuf, shifts, pcmpeq, emms, movd/movq */
    "rrrrrrrrrrrrrrrr" /* 8x: jcc rel32 */
    "mmmmmmmmmmmmmmmm" /* 9x: setcc */
    "..omMm.....mMm.m" /* Ax: cpuid, bt, shld, bts, shrd, imul */
    "mm.m..mmm.gmmmmm" /* Bx: cmpxchg, btr, movzx, popcnt, group 8, btc, bsf, bsr, movsx */
    "mmM.M.M.oooooooo" /* Cx: xadd, cmpps, pinsrw, shufps, bswap */
    ".mmmmmm.mmmmmmmm" /* Dx: SSE2 integer */
    "mmmmmm..mmmmmmmm" /* Ex */
    ".mmmmmm.mmmmmmm." /* Fx */
    ;
static const char two_byte_prefixes[256 + 1] =
    "0000010000010000" "FF00330010000043" "0000000033F0FF33" "0100000000000000"
    "3333333333333333" "0F553333FFF7FFFF" "3333333333332237" "F222333100000077"
    "1111111111111111" "1111111111111111" "0013330000033303" "3303003340337733"
    "33F0303011111111" "0333332033333333" "3333330033333333" "0333333033333330";

/* 0F 38 xx (ModRM) and 0F 3A xx (ModRM, 1-byte immediate): the prefixes, as above */
static const char three_byte_38[256 + 1] =
    "3333333333330000" "2000220200003330" "2222220022020000" "2222220222222222"
    "2200000000000000" "0000000000000000" "0000000000000000" "0000000000000000"
    "0000000000000000" "0000000000000000" "0000000000000000" "0000000000000000"
    "0000000011111100" "0000000000022222" "0000000000000000" "0000000000000000";
static const char three_byte_3A[256 + 1] =
    "0000000022222223" "0000222200000000" "2220000000000000" "0000000000000000"
    "2220200000000000" "0000000000000000" "2222000000000000" "0000000000000000"
    "0000000000000000" "0000000000000000" "0000000000000000" "0000000000000000"
    "0000000000001000" "0000000000000002" "0000000000000000" "0000000000000000";

/* What a form letter means */
enum { MODRM = 1, IMM8 = 2, IMM16 = 4, IMMZ = 8, IMMV = 16, IMM32 = 32, REL = 64, TESTCMP = 128 };
static const uint8_t forms[128] = {
    ['m'] = MODRM, ['M'] = MODRM | IMM8, ['Z'] = MODRM | IMMZ, ['b'] = IMM8, ['z'] = IMMZ,
    ['w'] = IMM16, ['q'] = IMMV, ['t'] = MODRM | TESTCMP, ['u'] = IMM8 | TESTCMP,
    ['v'] = IMMZ | TESTCMP, ['l'] = MODRM, ['e'] = MODRM, ['g'] = MODRM, ['j'] = REL | IMM8,
    ['J'] = REL | IMM8, ['r'] = REL | IMM32, ['K'] = REL | IMM32, ['C'] = REL | IMM32,
};

/* The opcodes whose ModRM.reg picks the instruction (0x100 + xx: 0F xx). The first
 * letter is the group's immediate (b: 1 byte, z: 2/4 bytes, -: none), the second the
 * ModRM operand it takes (* any, m memory only, r register only); then per reg: c
 * clears, n is test or cmp (NEUTRAL), s an indirect call or jmp (SEEN; any segment
 * prefix), . capstone; upper case: the immediate follows. */
static const char *group(unsigned opcode) {
    switch (opcode) {
    case 0x80: case 0x83: return "b*CCCCCCCN"; /* add .. cmp r/m, imm8 */
    case 0x81: return "z*CCCCCCCN";
    case 0x8F: return "-*c.......";            /* pop r/m */
    case 0xC0: case 0xC1: return "b*CCCCCC.C"; /* rol .. sar r/m, imm8 */
    case 0xD0: case 0xD1: case 0xD2: case 0xD3: return "-*cccccc.c";
    case 0xC6: return "b*C.......";            /* mov r/m, imm */
    case 0xC7: return "z*C.......";
    case 0xD8: case 0xDA: case 0xDC: case 0xDE: case 0xDF: return "-mcccccccc"; /* x87 */
    case 0xD9: return "-mc.cccccc";
    case 0xDB: return "-mcccc.c.c";
    case 0xDD: return "-mccccc.cc";
    case 0xF6: return "b*N.cccccc";            /* test r/m, imm; not .. idiv */
    case 0xF7: return "z*N.cccccc";
    case 0xFE: return "-*cc......";            /* inc, dec */
    case 0xFF: return "-*ccs.s.c.";            /* inc, dec, call, jmp, push */
    case 0x118: return "-mcccc....";           /* prefetch */
    case 0x11F: return "-*c.......";           /* nop r/m */
    case 0x171: case 0x172: return "br..C.C.C."; /* psrl, psra, psll xmm, imm8 */
    case 0x173: return "br..CC..CC";           /* psrlq, psrldq, psllq, pslldq */
    case 0x1BA: return "b*....CCCC";           /* bt .. btc r/m, imm8 */
    }
    return NULL;
}

#define FALLBACK (-1)

static int hex_digit(char c) { return c <= '9' ? c - '0' : c - 'A' + 10; }

static uint32_t little32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The length and class of the instruction at code[0:avail] (placed at `address`), as
 * capstone's text and `classify` would give them, or FALLBACK. */
static int fast_classify(const uint8_t *code, size_t avail, uint64_t address, uint64_t start,
                         uint64_t end, int absolute, size_t *length, uint64_t *target) {
    size_t limit = avail < 15 ? avail : 15, at = 0;
    int p66 = 0, rep = 0, segment = 0, rex = 0;
    for (;; at++) { /* 66 any number of times, the others once; a repeat ends the loop */
        if (at >= limit)
            return FALLBACK;
        uint8_t b = code[at];
        if (b == 0x66)
            p66 = 1;
        else if ((b == 0xF2 || b == 0xF3) && !rep)
            rep = b;
        else if ((b == 0x26 || b == 0x2E || b == 0x36 || b == 0x3E || b == 0x64 || b == 0x65) &&
                 !segment)
            segment = b;
        else
            break;
    }
    if ((code[at] & 0xF0) == 0x40) { /* REX, right before the opcode */
        rex = code[at];
        if (++at >= limit)
            return FALLBACK;
    }
    int rexw = rex & 8;
    unsigned opcode = code[at++], reg = 0;
    char form;
    if (opcode != 0x0F) {
        form = one_byte[opcode];
        if (rep && !(form == 's' && rep == 0xF3))
            return FALLBACK;
    } else {
        if (at >= limit || (p66 && rep))
            return FALLBACK;
        opcode = code[at++];
        const char *prefixes = two_byte_prefixes;
        form = two_byte[opcode];
        if (opcode == 0x38 || opcode == 0x3A) {
            if (at >= limit)
                return FALLBACK;
            prefixes = opcode == 0x38 ? three_byte_38 : three_byte_3A;
            form = opcode == 0x38 ? 'm' : 'M';
            opcode = code[at++];
        }
        int mandatory = rep == 0xF3 ? 4 : rep == 0xF2 ? 8 : p66 ? 2 : 1;
        if (!(hex_digit(prefixes[opcode]) & mandatory))
            return FALLBACK;
        opcode += 0x100;
    }
    if (form == '.')
        return FALLBACK;
    unsigned info = forms[(unsigned char)form];

    /* ModRM, SIB, displacement */
    char rule = 0;
    int memory = 0, rip = 0, has_disp = 0;
    int32_t displacement = 0;
    if (info & MODRM) {
        if (at >= limit)
            return FALLBACK;
        uint8_t modrm = code[at++], mod = modrm >> 6, rm = modrm & 7;
        reg = (rex & 4 ? 8 : 0) | ((modrm >> 3) & 7);
        memory = mod != 3;
        if (form == 'g') { /* the group's rule for ModRM.reg */
            const char *rules = group(opcode);
            rule = rules[2 + ((modrm >> 3) & 7)];
            if (rule == '.' || (rules[1] == 'm' && !memory) || (rules[1] == 'r' && memory))
                return FALLBACK;
            if (rule <= 'Z') /* upper case: the immediate follows */
                info |= rules[0] == 'b' ? IMM8 : IMMZ;
            rule = (char)(rule | 0x20);
        } else if (form == 'e' && modrm != 0xFA && modrm != 0xFB)
            return FALLBACK; /* endbr64, endbr32 only */
        else if (form == 'l' && !memory)
            return FALLBACK; /* lea of a register: invalid */
        size_t disp_size = mod == 1 ? 1 : mod == 2 ? 4 : 0;
        if (memory && rm == 4) { /* SIB */
            if (at >= limit)
                return FALLBACK;
            if (mod == 0 && (code[at] & 7) == 5)
                disp_size = 4; /* no base: [index*scale + disp32] */
            at++;
        } else if (mod == 0 && rm == 5) {
            rip = 1; /* [rip + disp32] */
            disp_size = 4;
        }
        if (at + disp_size > limit)
            return FALLBACK;
        if (disp_size == 4)
            displacement = (int32_t)little32(code + at);
        has_disp = disp_size != 0;
        at += disp_size;
    }
    if (segment && !(memory && form != 'l') && rule != 's')
        return FALLBACK;

    /* immediate or relative target */
    size_t immediate = info & IMM8    ? 1
                       : info & IMM16 ? 2
                       : info & IMMZ  ? (p66 && !rexw ? 2 : 4)
                       : info & IMMV  ? (rexw ? 8 : p66 ? 2 : 4)
                       : info & IMM32 ? 4
                                      : 0;
    if (at + immediate > limit || (p66 && form == 'w'))
        return FALLBACK; /* capstone reads 66 REX.W C2 with a 4-byte immediate */
    *length = at + immediate;
    if (absolute && (has_disp || immediate))
        return FALLBACK; /* an immediate may be an address there: capstone's text decides */

    if (info & REL) { /* relative call, jmp, jcc, loop, jrcxz */
        if (p66 || segment)
            return FALLBACK;
        int64_t rel = immediate == 1 ? (int8_t)code[at] : (int32_t)little32(code + at);
        *target = address + *length + (uint64_t)rel;
        if (*target <= 9 || *target >> 61)
            return FALLBACK; /* printed in decimal, or negative, or no address: capstone */
        int inside = *target >= start && *target < end;
        if (form == 'C')
            return BRANCH_CLEARS;
        if (form == 'J' || form == 'K')
            return inside ? CLEARS : BRANCH_CLEARS;
        return inside ? NEUTRAL : BRANCH;
    }
    if (rule == 's')
        return SEEN; /* indirect call or jmp */
    if (rip) { /* as `classify` reads capstone's text of it */
        if (info & TESTCMP || rule == 'n' || displacement == 0)
            return SEEN; /* cmp, test; `[rip]` has no number for the walker's pattern */
        uint64_t next = address + *length;
        if (next < address || (displacement < 0 ? (uint64_t)(-(int64_t)displacement) > next
                                                : (uint64_t)displacement > UINT64_MAX - next))
            return SEEN; /* Python's numbers do not wrap: it decides */
        *target = next + (uint64_t)(int64_t)displacement;
        if (*target >> 61)
            return SEEN;
        if (opcode < 0x88 || (opcode > 0x8B && opcode != 0xC6 && opcode != 0xC7))
            return REFERS; /* not a mov */
        if (*target >= MOVE_BELOW)
            return SEEN;
        unsigned name = 0; /* the register a load names with an "r", as `registers` */
        if (opcode == 0x8B && rexw)
            name = 1 + reg;
        else if (opcode == 0x8B && reg >= 8)
            name = 1 + (p66 ? 24 : 16) + reg - 8;
        else if (opcode == 0x8A && reg >= 8)
            name = 1 + 32 + reg - 8;
        *target = *target << 6 | name;
        return MOVE;
    }
    return info & TESTCMP || rule == 'n' ? NEUTRAL : CLEARS;
}

/* One instruction decoded and classified by capstone: its class, or FALLBACK when capstone
 * cannot decode it (then *error is capstone's errno). `absolute` is NULL in a
 * position-independent file, else gets the numbers that may be addresses. */
static int capstone_classify(size_t handle, const uint8_t *code, size_t avail,
                             uint64_t address, uint64_t start, uint64_t end, absolutes *absolute,
                             size_t *length, uint64_t *target, int *error) {
    void *insn = NULL;
    if (cs_disasm_p(handle, code, avail, address, 1, &insn) == 0) {
        *error = cs_errno_p(handle);
        return FALLBACK;
    }
    uint16_t size;
    memcpy(&size, (const char *)insn + size_at, sizeof size);
    *length = size;
    int kind = classify((const char *)insn, absolute, start, end, target);
    cs_free_p(insn, 1);
    return kind;
}

static int check_init(void) {
    if (cs_disasm_p == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_x86scan.init was not called");
        return -1;
    }
    return 0;
}

static unsigned long long fast_count, capstone_count; /* for `stats` */

/* scan(handle, code, offset, address, count, start, end, absolute, fast, low, high)
 *   -> (decoded, bounds, events, last_clear, error)
 * Decodes at most `count` instructions of code[offset:] placed at `address`, by the
 * tables where `fast` is set and they know the instruction, else by capstone. `bounds`
 * holds decoded + 1 native uint32 offsets from `offset`: where each instruction starts,
 * then where the last one ends. `events` is a flat list of three numbers for each
 * instruction the walker must see: its index, the index of the last clearing
 * instruction before it (-1: none), and -1 when the walker must read it, else
 * value * 4 + tag (BRANCH, BRANCH_CLEARS, REFERS: the target; MOVE: see `registers`).
 * In a position-dependent file (`absolute`), each number of an instruction that may be
 * an address (`absolutes`; [low, high) is the code's span) comes first as an event of
 * its own, -(value * 2 + 1 if the instruction is a call or j*, else + 0) - 2.
 * `last_clear` is that of the whole run; `error` capstone's errno when nothing was
 * decoded. */
/* What one run of `scan_run` decoded */
typedef struct {
    size_t decoded;        /* instructions */
    size_t length;         /* their bytes */
    size_t events;         /* numbers in `found` (three per event) */
    size_t tabled;         /* instructions decoded by the tables (the rest: capstone) */
    Py_ssize_t last_clear; /* the last clearing instruction, -1: none */
    int error;             /* capstone's errno where nothing was decoded */
} run_t;

/* `scan`'s decoding, without the GIL's help: fills `bound` (count + 1 entries) and
 * `found` (count * (absolute ? 3 * (1 + MAX_ABSOLUTE) : 3) numbers at most) */
static void scan_run(size_t handle, const uint8_t *base, size_t avail, uint64_t address,
                     size_t count, uint64_t start, uint64_t end, int absolute, int fast,
                     uint64_t low, uint64_t high, uint32_t *bound, int64_t *found, run_t *run) {
    size_t decoded = 0, position = 0, events = 0, tabled = 0;
    Py_ssize_t last_clear = -1;
    int error = 0;
    absolutes numbers = {.low = low, .high = high};
    if (avail > UINT32_MAX)
        avail = UINT32_MAX; /* offsets stay 32-bit; the next run goes on */
    while (decoded < count && position < avail) {
        const uint8_t *at = base + position;
        size_t length = 0;
        uint64_t target = 0;
        int kind = fast ? fast_classify(at, avail - position, address + position, start, end,
                                        absolute, &length, &target)
                        : FALLBACK;
        if (kind != FALLBACK)
            tabled++;
        else {
            kind = capstone_classify(handle, at, avail - position, address + position, start,
                                     end, absolute ? &numbers : NULL, &length, &target, &error);
            if (kind == FALLBACK)
                break; /* undecodable: the run ends before it */
            for (int i = 0; absolute && kind != SEEN && i < numbers.count; i++) {
                found[events++] = (int64_t)decoded;
                found[events++] = last_clear;
                found[events++] = -(int64_t)(numbers.values[i] << 1 | numbers.branch) - 2;
            }
        }
        bound[decoded] = (uint32_t)position;
        position += length;
        if (kind == CLEARS)
            last_clear = (Py_ssize_t)decoded;
        else if (kind != NEUTRAL) {
            found[events++] = (int64_t)decoded;
            found[events++] = last_clear;
            found[events++] = kind == SEEN ? -1 : (int64_t)((target << 2) | (uint64_t)kind);
        }
        decoded++;
    }
    bound[decoded] = (uint32_t)position;
    run->decoded = decoded;
    run->tabled = tabled;
    run->length = position;
    run->events = events;
    run->last_clear = last_clear;
    run->error = decoded ? 0 : error;
}

/* The events one instruction may have at most */
static size_t events_per(int absolute) { return absolute ? 3 * (1 + MAX_ABSOLUTE) : 3; }

/* scan(handle, code, offset, address, count, start, end, absolute, fast, low, high)
 *   -> (decoded, bounds, events, last_clear, error)
 * Decodes at most `count` instructions of code[offset:] placed at `address`, by the
 * tables where `fast` is set and they know the instruction, else by capstone. `bounds`
 * holds decoded + 1 native uint32 offsets from `offset`: where each instruction starts,
 * then where the last one ends. `events` is a flat list of three numbers for each
 * instruction the walker must see: its index, the index of the last clearing
 * instruction before it (-1: none), and -1 when the walker must read it, else
 * value * 4 + tag (BRANCH, BRANCH_CLEARS, REFERS: the target; MOVE: see `registers`).
 * In a position-dependent file (`absolute`), each number of an instruction that may be
 * an address (`absolutes`; [low, high) is the code's span) comes first as an event of
 * its own, -(value * 2 + 1 if the instruction is a call or j*, else + 0) - 2.
 * `last_clear` is that of the whole run; `error` capstone's errno when nothing was
 * decoded. */
static PyObject *scan(PyObject *self, PyObject *args) {
    unsigned long long handle, address, start, end, low, high;
    Py_buffer code;
    Py_ssize_t offset, count;
    int absolute, fast;
    if (!PyArg_ParseTuple(args, "Ky*nKnKKppKK", &handle, &code, &offset, &address, &count,
                          &start, &end, &absolute, &fast, &low, &high))
        return NULL;
    if (check_init() < 0 || offset < 0 || offset > code.len || count < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "offset outside the code");
        PyBuffer_Release(&code);
        return NULL;
    }
    const uint8_t *base = (const uint8_t *)code.buf + offset;
    size_t avail = (size_t)(code.len - offset);
    if (avail > UINT32_MAX)
        avail = UINT32_MAX;
    if ((size_t)count > avail)
        count = (Py_ssize_t)avail;
    PyObject *bounds = PyBytes_FromStringAndSize(NULL, (count + 1) * (Py_ssize_t)sizeof(uint32_t));
    int64_t *found = PyMem_RawMalloc(((size_t)count * events_per(absolute) + 1) * sizeof(int64_t));
    if (bounds == NULL || found == NULL) {
        PyBuffer_Release(&code);
        Py_XDECREF(bounds);
        PyMem_RawFree(found);
        return PyErr_NoMemory();
    }
    run_t run;
    Py_BEGIN_ALLOW_THREADS
    scan_run((size_t)handle, base, avail, address, (size_t)count, start, end, absolute, fast,
             low, high, (uint32_t *)PyBytes_AS_STRING(bounds), found, &run);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&code);
    fast_count += run.tabled;
    capstone_count += run.decoded - run.tabled;
    PyObject *list = PyList_New((Py_ssize_t)run.events);
    for (size_t i = 0; list != NULL && i < run.events; i++) {
        PyObject *item = PyLong_FromLongLong(found[i]);
        if (item == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    PyMem_RawFree(found);
    if (list == NULL || _PyBytes_Resize(&bounds, (Py_ssize_t)(run.decoded + 1) * 4) < 0) {
        Py_XDECREF(list);
        Py_XDECREF(bounds);
        return NULL;
    }
    return Py_BuildValue("(nNNni)", (Py_ssize_t)run.decoded, bounds, list, run.last_clear,
                         run.error);
}

/* ---- Settling events -------------------------------------------------------------------
 * What the walker does with most events touches only the call graph's tables, never its
 * own state but the loaded register: `settle` does it here, in the walker's order. A
 * call graph's tables are given once (`context`); the walker's own methods say what each
 * step means (callgraph._X86Walker._operand, _absolute; CallGraph._branch, _slot, _data,
 * _in_code, _in_got). */
typedef struct {
    uint64_t *code;     /* (start, end) of each code section, sorted by start */
    Py_ssize_t code_count;
    uint64_t *got;      /* (start, end) of each GOT section */
    Py_ssize_t got_count;
    uint64_t low, high; /* the code's span */
    PyObject *slots;    /* CallGraph.got: slot -> import name or address */
    PyObject *branches; /* CallGraph._branches: target -> what it resolves to */
} context;

static void context_release(context *graph) {
    PyMem_Free(graph->code);
    PyMem_Free(graph->got);
    Py_XDECREF(graph->slots);
    Py_XDECREF(graph->branches);
    PyMem_Free(graph);
}

static void context_free(PyObject *capsule) {
    context *graph = PyCapsule_GetPointer(capsule, "_x86scan.context");
    if (graph != NULL)
        context_release(graph);
}

/* A copy of a buffer of native uint64 */
static uint64_t *words(Py_buffer *buffer, Py_ssize_t *count) {
    *count = buffer->len / (Py_ssize_t)sizeof(uint64_t);
    uint64_t *copy = PyMem_Malloc((size_t)(*count ? *count : 1) * sizeof(uint64_t));
    if (copy != NULL)
        memcpy(copy, buffer->buf, (size_t)*count * sizeof(uint64_t));
    return copy;
}

/* A copy of a buffer of native uint64 (start, end) pairs */
static uint64_t *pairs(Py_buffer *buffer, Py_ssize_t *count) {
    uint64_t *copy = words(buffer, count);
    *count /= 2;
    return copy;
}

/* context(code, got, slots, branches) -> a capsule for `settle` */
static PyObject *make_context(PyObject *self, PyObject *args) {
    Py_buffer code, got;
    PyObject *slots, *branches;
    if (!PyArg_ParseTuple(args, "y*y*O!O!", &code, &got, &PyDict_Type, &slots, &PyDict_Type,
                          &branches))
        return NULL;
    context *graph = PyMem_Calloc(1, sizeof(context));
    if (graph != NULL) {
        graph->code = pairs(&code, &graph->code_count);
        graph->got = pairs(&got, &graph->got_count);
    }
    PyBuffer_Release(&code);
    PyBuffer_Release(&got);
    if (graph == NULL || graph->code == NULL || graph->got == NULL) {
        if (graph != NULL)
            context_release(graph);
        return PyErr_NoMemory();
    }
    if (graph->code_count) {
        graph->low = graph->code[0];
        for (Py_ssize_t i = 0; i < graph->code_count; i++)
            if (graph->code[2 * i + 1] > graph->high)
                graph->high = graph->code[2 * i + 1];
    }
    Py_INCREF(slots);
    Py_INCREF(branches);
    graph->slots = slots;
    graph->branches = branches;
    PyObject *capsule = PyCapsule_New(graph, "_x86scan.context", context_free);
    if (capsule == NULL)
        context_release(graph);
    return capsule;
}

/* The index of the code section holding `address` (bisect_right over the starts, as
 * CallGraph._in_code and _extent), -1 where none does */
static Py_ssize_t code_section(const context *graph, uint64_t address) {
    if (address < graph->low || address >= graph->high)
        return -1;
    Py_ssize_t low = 0, high = graph->code_count;
    while (low < high) {
        Py_ssize_t middle = (low + high) / 2;
        if (address < graph->code[2 * middle])
            high = middle;
        else
            low = middle + 1;
    }
    return low > 0 && address < graph->code[2 * (low - 1) + 1] ? low - 1 : -1;
}

static int in_code(const context *graph, uint64_t address) {
    return code_section(graph, address) >= 0;
}

static int in_got(const context *graph, uint64_t address) {
    for (Py_ssize_t i = 0; i < graph->got_count; i++)
        if (graph->got[2 * i] <= address && address < graph->got[2 * i + 1])
            return 1;
    return 0;
}

/* The lists one function's walk fills (callgraph._Function), and CallGraph._resolved
 * for a branch target not in the context's `branches` yet (given per call: the graph
 * holds the context, so the context holds nothing of the graph) */
typedef struct {
    PyObject *calls, *imports, *data, *resolve;
} function;

/* CallGraph._add: an import name or an address (None: nothing) */
static int add(function *result, PyObject *target) {
    if (PyUnicode_Check(target))
        return PyList_Append(result->imports, target);
    return target == Py_None ? 0 : PyList_Append(result->calls, target);
}

/* CallGraph._branch */
static int branch(const context *graph, function *result, uint64_t target) {
    PyObject *key = PyLong_FromUnsignedLongLong(target);
    if (key == NULL)
        return -1;
    PyObject *resolved = PyDict_GetItemWithError(graph->branches, key);
    int status;
    if (resolved != NULL)
        status = add(result, resolved);
    else if (PyErr_Occurred())
        status = -1;
    else {
        resolved = PyObject_CallOneArg(result->resolve, key);
        status = resolved == NULL ? -1 : add(result, resolved);
        Py_XDECREF(resolved);
    }
    Py_DECREF(key);
    return status;
}

/* CallGraph._data */
static int data(const context *graph, function *result, uint64_t address) {
    if (in_code(graph, address))
        return 0;
    PyObject *key = PyLong_FromUnsignedLongLong(address);
    int status = key == NULL ? -1 : PyList_Append(result->data, key);
    Py_XDECREF(key);
    return status;
}

/* What the GOT slot at `address` holds (borrowed), NULL where it is no GOT slot that
 * holds something; -1 in *error on a Python error */
static PyObject *held(const context *graph, uint64_t address, int *error) {
    PyObject *key = PyLong_FromUnsignedLongLong(address);
    if (key == NULL) {
        *error = -1;
        return NULL;
    }
    PyObject *found = PyDict_GetItemWithError(graph->slots, key);
    Py_DECREF(key);
    if (found == NULL && PyErr_Occurred())
        *error = -1;
    if (found == Py_None || !in_got(graph, address))
        return NULL;
    return found;
}

/* Events as `scan` lists them (a Python list) or `scan_run` leaves them (an array) */
typedef struct {
    PyObject *list;
    const int64_t *array;
} events_t;

static int event_at(const events_t *events, Py_ssize_t i, long long *value) {
    if (events->array != NULL) {
        *value = events->array[i];
        return 0;
    }
    *value = PyLong_AsLongLong(PyList_GET_ITEM(events->list, i));
    return *value == -1 && PyErr_Occurred() ? -1 : 0;
}

/* `settle`'s loop over the `count` numbers of `events` from *at: -1 on a Python error */
static int settle_run(const context *graph, function *result, const events_t *events,
                      Py_ssize_t count, Py_ssize_t *at_, Py_ssize_t *done_, uint64_t start,
                      uint64_t end, long *loaded_) {
    Py_ssize_t at = *at_, done = *done_;
    long loaded = -1;
    int status = 0;
    for (; at >= 0 && at < count; at += 3) {
        long long index, clear, code;
        if (event_at(events, at, &index) < 0 || event_at(events, at + 1, &clear) < 0 ||
            event_at(events, at + 2, &code) < 0)
            return -1;
        if (index <= done)
            continue;
        if (code == -1)
            break; /* the walker reads it */
        uint64_t number = code < -1 ? (uint64_t)(-code - 2) : 0; /* value * 2 + call/j* */
        uint64_t target = code < -1 ? number >> 1 : (uint64_t)code >> 2;
        unsigned tag = code < -1 ? 4 : (unsigned)(code & 3);
        unsigned reg = tag == MOVE ? (unsigned)((code >> 2) & 63) : 0; /* `registers`' + 1 */
        PyObject *slot = NULL; /* what the GOT slot a REFERS or MOVE names holds */
        if (tag == REFERS || tag == MOVE) {
            int error = 0;
            if (tag == MOVE)
                target = (uint64_t)code >> 8;
            slot = held(graph, target, &error);
            if (error)
                return -1;
            if (slot != NULL && PyUnicode_Check(slot) && reg != 0)
                break; /* the import is pending: the walker's `_operand` */
        }
        if (clear > done)
            loaded = 0;
        if (tag == 4) { /* _absolute's check of a number that may be an address */
            if (in_code(graph, target)) {
                if ((number & 1) == 0 && (target < start || target >= end))
                    status = branch(graph, result, target);
            } else if (target >= 0x1000)
                status = data(graph, result, target);
            if (status < 0)
                return -1;
            continue; /* the instruction's own event, if any, follows */
        }
        done = (Py_ssize_t)index;
        if (tag == BRANCH || tag == BRANCH_CLEARS) {
            status = branch(graph, result, target);
            if (tag == BRANCH_CLEARS)
                loaded = 0;
        } else if (slot != NULL) { /* REFERS, MOVE: _operand, a GOT slot (_slot) */
            status = add(result, slot);
            loaded = reg; /* 0 (cleared) but for a `mov` into a named register */
        } else { /* a data reference, or a function's address taken */
            loaded = 0;
            status = data(graph, result, target);
            if (status == 0 && (target < start || target >= end) && in_code(graph, target))
                status = branch(graph, result, target);
        }
        if (status < 0)
            return -1;
    }
    *at_ = at;
    *done_ = done;
    *loaded_ = loaded;
    return 0;
}

/* settle(context, resolve, events, at, done, start, end, calls, imports, data)
 *   -> (at, done, loaded)
 * Does what the walker does with the events from the one at events[at] on (`scan`'s
 * triples), until one the walker must do itself: an instruction to read, or a `mov`
 * loading an import's GOT slot into a register (it becomes pending). `at` is then that
 * event's place (else the list's length), its clearing not applied yet; `done` the last
 * instruction done; `loaded` what became of the walker's loaded register: -1 nothing,
 * 0 cleared, else `registers`' name at loaded - 1. */
static PyObject *settle(PyObject *self, PyObject *args) {
    PyObject *capsule;
    events_t events = {NULL, NULL};
    Py_ssize_t at, done;
    unsigned long long start, end;
    function result;
    if (!PyArg_ParseTuple(args, "OOO!nnKKO!O!O!", &capsule, &result.resolve, &PyList_Type,
                          &events.list, &at, &done, &start, &end, &PyList_Type, &result.calls,
                          &PyList_Type, &result.imports, &PyList_Type, &result.data))
        return NULL;
    const context *graph = PyCapsule_GetPointer(capsule, "_x86scan.context");
    if (graph == NULL)
        return NULL;
    Py_ssize_t count = PyList_GET_SIZE(events.list) / 3 * 3;
    long loaded = -1;
    if (settle_run(graph, &result, &events, count, &at, &done, start, end, &loaded) < 0)
        return NULL;
    return Py_BuildValue("(nnl)", at < count ? at : PyList_GET_SIZE(events.list), done, loaded);
}

/* bisect_right and bisect_left over a sorted array */
static Py_ssize_t right_of(const uint64_t *sorted, Py_ssize_t count, uint64_t value) {
    Py_ssize_t low = 0, high = count;
    while (low < high) {
        Py_ssize_t middle = (low + high) / 2;
        if (value < sorted[middle])
            high = middle;
        else
            low = middle + 1;
    }
    return low;
}

static Py_ssize_t left_of(const uint64_t *sorted, Py_ssize_t count, uint64_t value) {
    Py_ssize_t low = 0, high = count;
    while (low < high) {
        Py_ssize_t middle = (low + high) / 2;
        if (sorted[middle] < value)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* ---- Whole functions -------------------------------------------------------------------
 * CallGraph._function of an x86-64 function whose every event `settle` does: its extent
 * (CallGraph._extent), its runs decoded and settled in turn (_X86Walker._walk_sorted
 * without a read), its _Function made. A function with an instruction the walker must
 * read, or an import's address loaded into a register, is the walker's, from the start:
 * the answer is the same either way, only the time differs. A graph's tables for it are
 * given once (`summary`), its bytes on each call (a mapping may be closed in between). */
#define RUN 4096 /* instructions decoded at a time (callgraph.CHUNK) */
typedef struct {
    PyObject *context;   /* the settle context's capsule */
    uint64_t *offsets;   /* the file offset of each code section, in the context's order */
    uint64_t *starts;    /* CallGraph.starts */
    Py_ssize_t start_count;
    PyObject *sizes;     /* CallGraph.symbols.sizes: start -> size */
    PyObject *type;      /* callgraph._Function */
    size_t handle;       /* capstone's handle */
    int absolute;        /* a position-dependent file */
    uint64_t most;       /* MAX_FUNCTION_BYTES */
    uint64_t below;      /* _SORTED_BELOW: a function ending past it is the walker's */
    uint32_t *bound;     /* a run's buffers (a graph walks one function at a time) */
    int64_t *found;
} summary_t;

static void summary_release(summary_t *table) {
    Py_XDECREF(table->context);
    Py_XDECREF(table->sizes);
    Py_XDECREF(table->type);
    PyMem_Free(table->offsets);
    PyMem_Free(table->starts);
    PyMem_Free(table->bound);
    PyMem_Free(table->found);
    PyMem_Free(table);
}

static void summary_free(PyObject *capsule) {
    summary_t *table = PyCapsule_GetPointer(capsule, "_x86scan.summary");
    if (table != NULL)
        summary_release(table);
}

/* summary(context, offsets, starts, sizes, type, handle, absolute, most, below)
 *   -> a capsule for `function` and `walk` */
static PyObject *make_summary(PyObject *self, PyObject *args) {
    PyObject *capsule, *sizes, *type;
    Py_buffer offsets, starts;
    unsigned long long handle, most, below;
    int absolute;
    if (!PyArg_ParseTuple(args, "Oy*y*O!OKpKK", &capsule, &offsets, &starts, &PyDict_Type,
                          &sizes, &type, &handle, &absolute, &most, &below))
        return NULL;
    const context *graph = check_init() < 0 ? NULL
                                            : PyCapsule_GetPointer(capsule, "_x86scan.context");
    summary_t *table = graph == NULL ? NULL : PyMem_Calloc(1, sizeof(summary_t));
    Py_ssize_t sections = 0;
    if (table != NULL) {
        table->offsets = words(&offsets, &sections);
        table->starts = words(&starts, &table->start_count);
        table->bound = PyMem_Malloc((RUN + 1) * sizeof(uint32_t));
        table->found = PyMem_Malloc((RUN * events_per(absolute) + 1) * sizeof(int64_t));
    }
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&starts);
    if (table == NULL)
        return graph == NULL ? NULL : PyErr_NoMemory();
    Py_INCREF(capsule);
    Py_INCREF(sizes);
    Py_INCREF(type);
    table->context = capsule, table->sizes = sizes, table->type = type;
    table->handle = (size_t)handle, table->absolute = absolute;
    table->most = most, table->below = below;
    PyObject *made = NULL;
    if (table->offsets == NULL || table->starts == NULL || table->bound == NULL ||
        table->found == NULL)
        PyErr_NoMemory();
    else if (sections != graph->code_count)
        PyErr_SetString(PyExc_ValueError, "an offset for each code section");
    else
        made = PyCapsule_New(table, "_x86scan.summary", summary_free);
    if (made == NULL)
        summary_release(table);
    return made;
}

static uint64_t saturated(uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; }

/* Whether a `jmp` through a register-only or memory operand is a switch's
 * (_X86Walker._switch): 1 yes, 0 no, -1 where the six instructions before it are not all
 * in this run (the walker decides then). `bound` holds the run's instruction starts. */
static int is_switch(const summary_t *table, const char *ops, const uint8_t *code,
                     size_t avail, const uint32_t *bound, int64_t index, uint64_t address,
                     int before) {
    if (strstr(ops, "*8 + 0x") != NULL && strstr(ops, "rip") == NULL)
        return 1;
    if (ops[0] == '\0' || strspn(ops, "abcdefghijklmnopqrstuvwxyz0123456789") != strlen(ops))
        return 0;
    if (index < 6 && before)
        return -1;
    for (int64_t i = index < 6 ? 0 : index - 6; i < index; i++) {
        void *insn = NULL;
        if (cs_disasm_p(table->handle, code + bound[i], avail - bound[i], address + bound[i], 1,
                        &insn) == 0)
            return -1;
        const char *mnemonic = (const char *)insn + mnemonic_at;
        const char *operands = (const char *)insn + ops_at;
        const char *kept = mnemonic; /* as the walker's `recent` keeps it */
        if ((mnemonic[0] != '\0' && strchr("cjlbnt", mnemonic[0]) != NULL) ||
            strstr(operands, "rip") != NULL) {
            const char *space = strrchr(mnemonic, ' ');
            kept = space ? space + 1 : mnemonic;
        }
        int found = strcmp(kept, "movsxd") == 0 && strstr(operands, "*4]") != NULL;
        cs_free_p(insn, 1);
        if (found)
            return 1;
    }
    return 0;
}

/* _X86Walker._step of the run's instruction at `index`, one `scan` lists for the walker
 * to read, where no import address is pending: 1 done, 0 where the walker must do it
 * (an import's address loaded, a number of a position-dependent file, a form the
 * walker's patterns read differently), -1 on a Python error. `loaded` is the walker's
 * loaded register (`registers`' at loaded - 1, 0: none), `indirect` its result's flag. */
static int read_one(const summary_t *table, const context *graph, function *result,
                    const uint8_t *code, size_t avail, const uint32_t *bound, int64_t index,
                    uint64_t address, uint64_t start, uint64_t end, int before, int *loaded,
                    int *indirect) {
    void *insn = NULL;
    uint32_t offset = bound[index];
    if (cs_disasm_p(table->handle, code + offset, avail - offset, address + offset, 1, &insn) ==
        0)
        return 0;
    char mnemonic[32], ops[160];
    const char *record = insn;
    uint64_t at;
    uint16_t size;
    memcpy(&at, record + address_at, sizeof at);
    memcpy(&size, record + size_at, sizeof size);
    int fits = strlen(record + mnemonic_at) < sizeof mnemonic &&
               strlen(record + ops_at) < sizeof ops;
    if (fits) {
        strcpy(mnemonic, record + mnemonic_at);
        strcpy(ops, record + ops_at);
    }
    cs_free_p(insn, 1);
    if (!fits || mnemonic[0] == '\0' || (table->absolute && strstr(ops, "0x") != NULL))
        return 0;
    int rip = strstr(ops, "rip") != NULL;
    if (!rip && strchr("cjlbnt", mnemonic[0]) == NULL) {
        *loaded = 0;
        return 1;
    }
    const char *space = strrchr(mnemonic, ' ');
    const char *name = space ? space + 1 : mnemonic;
    uint64_t target = 0;
    if (rip && (at + size < at || !rip_target(ops, at + size, &target)))
        return 0;
    int call = strcmp(name, "call") == 0, error = 0;
    PyObject *slot = rip ? held(graph, target, &error) : NULL;
    if (error)
        return -1;
    if (call || name[0] == 'j' || strncmp(name, "loop", 4) == 0) { /* _instruction's branch */
        if (ops[0] == '0' && ops[1] == 'x')
            return 0;
        if (rip) { /* through a GOT or data slot (_slot) */
            if (slot != NULL ? add(result, slot) < 0 : data(graph, result, target) < 0)
                return -1;
            if (slot == NULL)
                *indirect = 1;
        } else if (*loaded && strcmp(ops, registers[*loaded - 1]) == 0) {
            /* a function's address loaded from its GOT slot: added with the load */
        } else if (call)
            *indirect = 1;
        else {
            int table_jump = is_switch(table, ops, code, avail, bound, index, address, before);
            if (table_jump < 0)
                return 0;
            if (!table_jump)
                *indirect = 1;
        }
        if (call || strcmp(name, "jmp") == 0)
            *loaded = 0;
        return 1;
    }
    int compares = strcmp(name, "test") == 0 || strcmp(name, "cmp") == 0;
    int moves = strcmp(name, "mov") == 0;
    if (!compares)
        *loaded = 0;
    if (!rip)
        return 1;
    /* _operand */
    if (slot != NULL && PyUnicode_Check(slot)) {
        if (compares)
            return 1; /* whether the import is linked in, not the import */
        if (moves && ops[0] == 'r')
            return 0; /* an import's address loaded: the walker's `pending` */
    }
    if (slot != NULL) { /* _slot */
        if (add(result, slot) < 0)
            return -1;
        if (moves && ops[0] == 'r' && strchr(ops, ',') != NULL) {
            size_t length = strcspn(ops, ","), code_ = 0;
            while (code_ < REGISTERS && (strlen(registers[code_]) != length ||
                                         strncmp(registers[code_], ops, length) != 0))
                code_++;
            if (code_ == REGISTERS)
                return 0; /* a register the table lacks: the walker keeps its name */
            *loaded = (int)code_ + 1;
        }
        return 1;
    }
    if (data(graph, result, target) < 0)
        return -1;
    if ((target < start || target >= end) && in_code(graph, target) &&
        branch(graph, result, target) < 0)
        return -1;
    return 1;
}

/* The function at `node`, a new _Function; Py_None (a new reference) where the walker
 * must make it; NULL on a Python error. */
static PyObject *summarise(summary_t *table, PyObject *resolve, const uint8_t *bytes,
                           size_t size, PyObject *node, int fast) {
    const context *graph = PyCapsule_GetPointer(table->context, "_x86scan.context");
    if (graph == NULL)
        return NULL;
    uint64_t start = PyLong_AsUnsignedLongLong(node);
    if (start == (uint64_t)-1 && PyErr_Occurred()) {
        PyErr_Clear(); /* not a 64-bit address: the walker's */
        Py_RETURN_NONE;
    }
    PyObject *calls = PyList_New(0), *imports = PyList_New(0), *data_ = PyList_New(0);
    PyObject *made = NULL;
    long long instructions = 0;
    int indirect = 0;
    if (calls == NULL || imports == NULL || data_ == NULL)
        goto done;
    Py_ssize_t section = code_section(graph, start); /* _extent */
    if (section >= 0) {
        uint64_t section_start = graph->code[2 * section];
        uint64_t section_end = graph->code[2 * section + 1];
        uint64_t end = 0, length = 0;
        PyObject *sized = PyDict_GetItemWithError(table->sizes, node);
        if (sized == NULL && PyErr_Occurred())
            goto done;
        if (sized != NULL) {
            end = PyLong_AsUnsignedLongLong(sized);
            if (end == (uint64_t)-1 && PyErr_Occurred()) {
                PyErr_Clear(); /* a size past 64 bits, or negative: the walker's */
                made = Py_NewRef(Py_None);
                goto done;
            }
        }
        if (end) /* the symbol's size */
            end = saturated(start, end);
        else { /* up to the next function start, else the section's end */
            Py_ssize_t after = right_of(table->starts, table->start_count, start);
            end = after < table->start_count ? table->starts[after] : section_end;
        }
        if (end > section_end)
            end = section_end;
        if (end > saturated(start, table->most))
            end = saturated(start, table->most);
        if (end >= table->below) {
            made = Py_NewRef(Py_None);
            goto done;
        }
        uint64_t offset = table->offsets[section];
        uint64_t at = saturated(offset, start - section_start);
        if (at < size && at != UINT64_MAX)
            length = end - start < size - at ? end - start : size - at;
        function result = {calls, imports, data_, resolve};
        int loaded = 0, before = 0; /* the walker's loaded register; a run before this one */
        for (uint64_t position = 0; position < length;) {
            run_t run;
            scan_run(table->handle, bytes + at + position, (size_t)(length - position),
                     start + position, RUN, start, end, table->absolute, fast, graph->low,
                     graph->high, table->bound, table->found, &run);
            fast_count += run.tabled;
            capstone_count += run.decoded - run.tabled;
            if (!run.decoded) {
                if (run.error) { /* capstone failed: the walker raises it */
                    made = Py_NewRef(Py_None);
                    goto done;
                }
                position++; /* an undecodable byte: skipped */
                before = 1;
                continue;
            }
            instructions += (long long)run.decoded;
            events_t events = {NULL, table->found};
            Py_ssize_t next = 0, finished = -1, count = (Py_ssize_t)run.events;
            const uint8_t *code = bytes + at + position;
            for (;;) {
                long now;
                if (settle_run(graph, &result, &events, count, &next, &finished, start, end,
                               &now) < 0)
                    goto done;
                if (now >= 0)
                    loaded = (int)now;
                if (next >= count)
                    break;
                const int64_t *event = table->found + next;
                if (event[2] != -1) { /* an import's GOT slot loaded: pending, the walker's */
                    made = Py_NewRef(Py_None);
                    goto done;
                }
                if (event[1] > finished)
                    loaded = 0;
                finished = (Py_ssize_t)event[0];
                int read = read_one(table, graph, &result, code, (size_t)(length - position),
                                    table->bound, event[0], start + position, start, end,
                                    before, &loaded, &indirect);
                if (read < 0)
                    goto done;
                if (read == 0) {
                    made = Py_NewRef(Py_None);
                    goto done;
                }
                next += 3;
            }
            if (run.last_clear > finished)
                loaded = 0;
            position += run.length;
            before = 1;
        }
    }
    made = PyObject_CallFunction(table->type, "OOOLO", calls, imports,
                                 indirect ? Py_True : Py_False, instructions, data_);
done:
    Py_XDECREF(calls);
    Py_XDECREF(imports);
    Py_XDECREF(data_);
    return made;
}

static summary_t *summary_table(PyObject *capsule) {
    return PyCapsule_GetPointer(capsule, "_x86scan.summary");
}

/* function(summary, resolve, data, start, fast) -> the _Function at `start`, or None
 * where the walker must make it (what `walk` does before it asks the graph) */
static PyObject *one_function(PyObject *self, PyObject *args) {
    PyObject *capsule, *resolve, *node;
    Py_buffer data;
    int fast;
    if (!PyArg_ParseTuple(args, "OOy*Op", &capsule, &resolve, &data, &node, &fast))
        return NULL;
    summary_t *table = summary_table(capsule);
    PyObject *made = table == NULL
                         ? NULL
                         : summarise(table, resolve, data.buf, (size_t)data.len, node, fast);
    PyBuffer_Release(&data);
    return made;
}

/* ---- Data objects ----------------------------------------------------------------------
 * CallGraph.object_slots and _object_pointers: the pointer slots of the data object at an
 * address and what they point to. A call graph's tables for them are given once
 * (`objects`); the settle context brings the code and GOT spans. */
typedef struct {
    PyObject *spans;          /* the settle context's capsule (code and GOT spans) */
    uint64_t *starts, *ends;  /* CallGraph._objects (sized symbols), sorted */
    Py_ssize_t object_count;
    uint64_t *slots;          /* CallGraph._pointer_slots */
    Py_ssize_t slot_count;
    uint64_t *held;           /* CallGraph._object_starts_held(), within 64 bits */
    Py_ssize_t held_count;
    PyObject *pointers;       /* CallGraph.pointers: slot -> address or import name */
    uint64_t gap, most;       /* OBJECT_GAP, MAX_OBJECT_SLOTS */
} objects_context;

static void objects_release(objects_context *table) {
    PyMem_Free(table->starts);
    PyMem_Free(table->ends);
    PyMem_Free(table->slots);
    PyMem_Free(table->held);
    Py_XDECREF(table->spans);
    Py_XDECREF(table->pointers);
    PyMem_Free(table);
}

static void objects_free(PyObject *capsule) {
    objects_context *table = PyCapsule_GetPointer(capsule, "_x86scan.objects");
    if (table != NULL)
        objects_release(table);
}

static int ascending(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The addresses `pointers` holds outside the code, sorted, once each: where objects
 * start (CallGraph._object_starts_held; values past 64 bits never end a run) */
static uint64_t *held_starts(const context *graph, PyObject *pointers, Py_ssize_t *count) {
    uint64_t *held = PyMem_Malloc((size_t)(PyDict_GET_SIZE(pointers) + 1) * sizeof(uint64_t));
    Py_ssize_t position = 0, used = 0;
    PyObject *key, *value;
    if (held == NULL)
        return NULL;
    while (PyDict_Next(pointers, &position, &key, &value)) {
        if (!PyLong_Check(value))
            continue;
        uint64_t address = PyLong_AsUnsignedLongLong(value);
        if (address == (uint64_t)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            continue;
        }
        if (!in_code(graph, address))
            held[used++] = address;
    }
    qsort(held, (size_t)used, sizeof(uint64_t), ascending);
    Py_ssize_t unique = 0;
    for (Py_ssize_t i = 0; i < used; i++)
        if (unique == 0 || held[unique - 1] != held[i])
            held[unique++] = held[i];
    *count = unique;
    return held;
}

/* objects(spans, starts, ends, slots, pointers, gap, most) -> a capsule for `pointed` */
static PyObject *make_objects(PyObject *self, PyObject *args) {
    PyObject *spans, *pointers;
    Py_buffer starts, ends, slots;
    unsigned long long gap, most;
    if (!PyArg_ParseTuple(args, "O!y*y*y*O!KK", &PyCapsule_Type, &spans, &starts, &ends, &slots,
                          &PyDict_Type, &pointers, &gap, &most))
        return NULL;
    const context *graph = PyCapsule_GetPointer(spans, "_x86scan.context");
    objects_context *table = graph == NULL ? NULL : PyMem_Calloc(1, sizeof(objects_context));
    Py_ssize_t ends_count = 0;
    if (table != NULL) {
        table->starts = words(&starts, &table->object_count);
        table->ends = words(&ends, &ends_count);
        table->slots = words(&slots, &table->slot_count);
        table->held = held_starts(graph, pointers, &table->held_count);
        table->gap = gap;
        table->most = most;
        Py_INCREF(spans);
        Py_INCREF(pointers);
        table->spans = spans;
        table->pointers = pointers;
    }
    PyBuffer_Release(&starts);
    PyBuffer_Release(&ends);
    PyBuffer_Release(&slots);
    if (graph == NULL)
        return NULL;
    if (table == NULL || table->starts == NULL || table->ends == NULL || table->slots == NULL ||
        table->held == NULL || ends_count != table->object_count) {
        int bad_shape = table != NULL && ends_count != table->object_count;
        if (table != NULL)
            objects_release(table);
        if (bad_shape) {
            PyErr_SetString(PyExc_ValueError, "as many object ends as starts");
            return NULL;
        }
        return PyErr_Occurred() ? NULL : PyErr_NoMemory();
    }
    PyObject *capsule = PyCapsule_New(table, "_x86scan.objects", objects_free);
    if (capsule == NULL)
        objects_release(table);
    return capsule;
}

/* bisect_right / bisect_left over a sorted uint64 array */
/* CallGraph._object_pointers(address) for an address within 64 bits: (functions and
 * imports, data) of the object's slots, in slot order (object_slots' rule) */
static PyObject *object_entry(const objects_context *table, uint64_t address) {
    const context *graph = PyCapsule_GetPointer(table->spans, "_x86scan.context");
    const uint64_t *slots = table->slots;
    Py_ssize_t first = 0, count = 0, n = table->slot_count;
    uint64_t alone = address;
    const uint64_t *taken = slots;
    if (graph == NULL)
        return NULL;
    if (in_got(graph, address)) {
        PyObject *key = PyLong_FromUnsignedLongLong(address);
        if (key == NULL)
            return NULL;
        int present = PyDict_Contains(table->pointers, key);
        Py_DECREF(key);
        if (present < 0)
            return NULL;
        taken = &alone;
        count = present;
    } else {
        Py_ssize_t index = right_of(table->starts, table->object_count, address) - 1;
        if (index >= 0 && address < table->ends[index]) {
            first = left_of(slots, n, table->starts[index]);
            Py_ssize_t high = left_of(slots, n, table->ends[index]);
            count = high - first;
            if ((uint64_t)count > table->most)
                count = (Py_ssize_t)table->most;
            if (count < 0)
                count = 0;
        } else {
            first = left_of(slots, n, address);
            Py_ssize_t at = first;
            while (at < n && (uint64_t)count < table->most) {
                uint64_t previous = count ? slots[at - 1] : address;
                if (slots[at] - previous > (count ? table->gap : 64))
                    break;
                if (count) { /* another object starts after the last slot, by this one? */
                    Py_ssize_t after = right_of(table->held, table->held_count, slots[at - 1]);
                    if (after < table->held_count && table->held[after] <= slots[at])
                        break;
                }
                count++;
                at++;
            }
        }
        taken = slots + first;
    }
    PyObject *targets = PyList_New(0), *inner = PyList_New(0);
    if (targets == NULL || inner == NULL)
        goto failed;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyLong_FromUnsignedLongLong(taken[i]);
        if (key == NULL)
            goto failed;
        PyObject *target = PyDict_GetItemWithError(table->pointers, key);
        Py_DECREF(key);
        if (target == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_KeyError, "a pointer slot without a pointer");
            goto failed;
        }
        int code = 0;
        if (PyLong_Check(target)) {
            uint64_t value = PyLong_AsUnsignedLongLong(target);
            if (value == (uint64_t)-1 && PyErr_Occurred())
                PyErr_Clear(); /* past 64 bits, or negative: never code */
            else
                code = in_code(graph, value);
        }
        if (PyList_Append(PyUnicode_Check(target) || code ? targets : inner, target) < 0)
            goto failed;
    }
    PyObject *entry = Py_BuildValue("(NN)", PyList_AsTuple(targets), PyList_AsTuple(inner));
    Py_DECREF(targets);
    Py_DECREF(inner);
    return entry;
failed:
    Py_XDECREF(targets);
    Py_XDECREF(inner);
    return NULL;
}

/* The body of `pointed`: appends to `found` (a list) what the objects at `addresses` (a
 * list) point to */
static int follow(PyObject *found, PyObject *addresses, PyObject *objects, PyObject *known,
                  PyObject *compute, const objects_context *table) {
    PyObject *pending = PyList_New(0);
    if (pending == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(addresses); i++) {
        PyObject *address = PyList_GET_ITEM(addresses, i);
        int taken = PySet_Contains(objects, address);
        if (taken < 0 || (!taken && PyList_Append(pending, address) < 0))
            goto failed;
    }
    while (PyList_GET_SIZE(pending) > 0) {
        Py_ssize_t last = PyList_GET_SIZE(pending) - 1;
        PyObject *address = PyList_GET_ITEM(pending, last);
        Py_INCREF(address);
        if (PyList_SetSlice(pending, last, last + 1, NULL) < 0) {
            Py_DECREF(address);
            goto failed;
        }
        int taken = PySet_Contains(objects, address);
        if (taken != 0 || PySet_Add(objects, address) < 0) {
            Py_DECREF(address);
            if (taken > 0)
                continue;
            goto failed;
        }
        PyObject *entry = PyDict_GetItemWithError(known, address);
        if (entry != NULL)
            Py_INCREF(entry);
        else if (!PyErr_Occurred()) {
            uint64_t at = table == NULL ? 0 : PyLong_AsUnsignedLongLong(address);
            if (table == NULL || (at == (uint64_t)-1 && PyErr_Occurred())) {
                PyErr_Clear();
                entry = PyObject_CallOneArg(compute, address);
            } else if ((entry = object_entry(table, at)) != NULL &&
                       PyDict_SetItem(known, address, entry) < 0)
                Py_CLEAR(entry);
        }
        Py_DECREF(address);
        if (entry == NULL)
            goto failed;
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2 ||
            !PyTuple_Check(PyTuple_GET_ITEM(entry, 0)) ||
            !PyTuple_Check(PyTuple_GET_ITEM(entry, 1))) {
            Py_DECREF(entry);
            PyErr_SetString(PyExc_TypeError, "an object's entry is not (targets, inner)");
            goto failed;
        }
        PyObject *targets = PyTuple_GET_ITEM(entry, 0), *inner = PyTuple_GET_ITEM(entry, 1);
        Py_ssize_t size = PyList_GET_SIZE(found);
        int status = PyList_SetSlice(found, size, size, targets);
        for (Py_ssize_t i = 0; status == 0 && i < PyTuple_GET_SIZE(inner); i++) {
            PyObject *next = PyTuple_GET_ITEM(inner, i);
            int seen = PySet_Contains(objects, next);
            status = seen < 0 ? -1 : seen ? 0 : PyList_Append(pending, next);
        }
        Py_DECREF(entry);
        if (status < 0)
            goto failed;
    }
    Py_DECREF(pending);
    return 0;
failed:
    Py_DECREF(pending);
    return -1;
}

static int objects_table(PyObject *capsule, const objects_context **table) {
    *table = NULL;
    if (capsule == Py_None)
        return 0;
    *table = PyCapsule_GetPointer(capsule, "_x86scan.objects");
    return *table == NULL ? -1 : 0;
}

/* pointed(addresses, objects, known, compute, table=None) -> [function or import, ...]
 * CallGraph._pointed: what the data objects at `addresses` point to, following pointers
 * from data to data, depth first from the last address; `objects` (a set) are the ones
 * taken already and gets those taken now; `known` maps an object's address to (its
 * functions and imports, its data pointers), and where it has none, `table` (an
 * `objects` capsule) makes the entry and keeps it in `known`, else (or for an address
 * past 64 bits) `compute(address)` gives it. */
static PyObject *pointed(PyObject *self, PyObject *args) {
    PyObject *addresses, *objects, *known, *compute, *capsule = Py_None;
    const objects_context *table;
    if (!PyArg_ParseTuple(args, "O!O!O!O|O", &PyList_Type, &addresses, &PySet_Type, &objects,
                          &PyDict_Type, &known, &compute, &capsule) ||
        objects_table(capsule, &table) < 0)
        return NULL;
    PyObject *found = PyList_New(0);
    if (found == NULL || follow(found, addresses, objects, known, compute, table) < 0) {
        Py_XDECREF(found);
        return NULL;
    }
    return found;
}

/* walk(graph, queue, parent, functions, limits, known, table) ->
 *     (first, walked, instructions, indirect, bound)
 * CallGraph._walk's breadth-first loop: `queue` (a list) holds the starts, `parent` maps
 * each to (None, its label) and gets every function reached, as (its parent, "call" or
 * INDIRECT); `functions` maps a start to its _Function, and graph._function(start) makes
 * one where it has none (counting graph.disassembled, checked against graph.budget);
 * `limits` is (max functions, max instructions, "call", INDIRECT); `first` maps each
 * import reached to (the function reaching it, whether through a data pointer). */
/* An attribute by a name interned once */
static PyObject *attribute(PyObject *object, PyObject **name, const char *text) {
    if (*name == NULL && (*name = PyUnicode_InternFromString(text)) == NULL)
        return NULL;
    return PyObject_GetAttr(object, *name);
}

static PyObject *walk(PyObject *self, PyObject *args) {
    static PyObject *s_instructions, *s_indirect, *s_imports, *s_calls, *s_data, *s_disassembled;
    PyObject *graph, *queue, *parent, *functions, *known, *capsule, *how_call, *how_pointer;
    PyObject *quick = Py_None, *summary = NULL, *resolve = NULL, *bytes = NULL;
    long long max_functions, max_instructions;
    const objects_context *table;
    summary_t *summaries = NULL;
    int fast = 0;
    if (!PyArg_ParseTuple(args, "OO!O!O!(LLUU)O!O|O", &graph, &PyList_Type, &queue,
                          &PyDict_Type, &parent, &PyDict_Type, &functions, &max_functions,
                          &max_instructions, &how_call, &how_pointer, &PyDict_Type, &known,
                          &capsule, &quick) ||
        objects_table(capsule, &table) < 0)
        return NULL;
    /* quick: (summary, resolve, data, fast), the graph's functions made here (`function`) */
    Py_buffer code = {0};
    if (quick != Py_None) {
        if (!PyArg_ParseTuple(quick, "OOOp", &summary, &resolve, &bytes, &fast) ||
            (summaries = summary_table(summary)) == NULL ||
            PyObject_GetBuffer(bytes, &code, PyBUF_SIMPLE) < 0)
            return NULL;
    }
    PyObject *first = PyDict_New(), *objects = PySet_New(NULL), *found = PyList_New(0);
    PyObject *make = PyObject_GetAttrString(graph, "_function");
    PyObject *compute = PyObject_GetAttrString(graph, "_object_pointers");
    long long walked = 0, instructions = 0, disassembled = 0, budget = 0;
    int indirect = 0, bound = 0;
    Py_ssize_t head = 0;
    if (first == NULL || objects == NULL || found == NULL || make == NULL || compute == NULL)
        goto failed;
#define READ_LONG(name, into)                                                                  \
    do {                                                                                       \
        PyObject *value_ = attribute(graph, &s_disassembled, name);                            \
        into = value_ == NULL ? -1 : PyLong_AsLongLong(value_);                                \
        Py_XDECREF(value_);                                                                    \
        if (into == -1 && PyErr_Occurred())                                                    \
            goto failed;                                                                       \
    } while (0)
    READ_LONG("disassembled", disassembled);
    PyObject *limit = PyObject_GetAttrString(graph, "budget");
    budget = limit == NULL ? -1 : PyLong_AsLongLong(limit);
    Py_XDECREF(limit);
    if (budget == -1 && PyErr_Occurred())
        goto failed;
    while (head < PyList_GET_SIZE(queue)) {
        if (walked >= max_functions || instructions >= max_instructions || disassembled >= budget) {
            bound = 1;
            break;
        }
        PyObject *node = PyList_GET_ITEM(queue, head++);
        PyObject *function = PyDict_GetItemWithError(functions, node);
        int made = function == NULL;
        if (function != NULL)
            Py_INCREF(function);
        else if (PyErr_Occurred())
            goto failed;
        else if (summaries != NULL) { /* made here, as the graph's _function would */
            function = summarise(summaries, resolve, code.buf, (size_t)code.len, node, fast);
            if (function == NULL)
                goto failed;
            if (function == Py_None)
                Py_CLEAR(function);
            else {
                made = 0;
                PyObject *more = attribute(function, &s_instructions, "instructions");
                long long count_ = more == NULL ? -1 : PyLong_AsLongLong(more);
                Py_XDECREF(more);
                PyObject *total = count_ < 0 ? NULL : PyLong_FromLongLong(disassembled + count_);
                int status_ = total == NULL ? -1 : PyDict_SetItem(functions, node, function);
                if (status_ == 0)
                    status_ = PyObject_SetAttrString(graph, "disassembled", total);
                Py_XDECREF(total);
                if (status_ < 0) {
                    if (!PyErr_Occurred())
                        PyErr_SetString(PyExc_ValueError, "a function without instructions");
                    Py_DECREF(function);
                    goto failed;
                }
                disassembled += count_;
            }
        }
        if (function == NULL && (function = PyObject_CallOneArg(make, node)) == NULL)
            goto failed;
        PyObject *count = attribute(function, &s_instructions, "instructions");
        PyObject *unresolved = attribute(function, &s_indirect, "indirect");
        PyObject *imports = attribute(function, &s_imports, "imports");
        PyObject *calls = attribute(function, &s_calls, "calls");
        PyObject *data = attribute(function, &s_data, "data");
        Py_DECREF(function);
        int status = count && unresolved && imports && calls && data && PyList_Check(imports) &&
                             PyList_Check(calls) && PyList_Check(data)
                         ? 0
                         : -1;
        if (status == 0 && made) { /* graph._function counted what it disassembled */
            PyObject *value = attribute(graph, &s_disassembled, "disassembled");
            disassembled = value == NULL ? -1 : PyLong_AsLongLong(value);
            Py_XDECREF(value);
            if (disassembled == -1 && PyErr_Occurred())
                status = -1;
        }
        if (status == 0) {
            long long more = PyLong_AsLongLong(count);
            int truth = PyObject_IsTrue(unresolved);
            if ((more == -1 && PyErr_Occurred()) || truth < 0)
                status = -1;
            walked++;
            instructions += more;
            indirect = indirect || truth > 0;
        }
        for (Py_ssize_t i = 0; status == 0 && i < PyList_GET_SIZE(imports); i++) {
            PyObject *name = PyList_GET_ITEM(imports, i);
            int has = PyDict_Contains(first, name);
            if (has < 0)
                status = -1;
            else if (!has) {
                PyObject *pair = PyTuple_Pack(2, node, Py_False);
                status = pair == NULL ? -1 : PyDict_SetItem(first, name, pair);
                Py_XDECREF(pair);
            }
        }
        for (Py_ssize_t i = 0; status == 0 && i < PyList_GET_SIZE(calls); i++) {
            PyObject *target = PyList_GET_ITEM(calls, i);
            int has = PyDict_Contains(parent, target);
            if (has < 0)
                status = -1;
            else if (!has) {
                PyObject *pair = PyTuple_Pack(2, node, how_call);
                status = pair == NULL || PyDict_SetItem(parent, target, pair) < 0 ||
                                 PyList_Append(queue, target) < 0
                             ? -1
                             : 0;
                Py_XDECREF(pair);
            }
        }
        if (status == 0 && PyList_GET_SIZE(data) > 0) {
            status = PyList_SetSlice(found, 0, PyList_GET_SIZE(found), NULL);
            if (status == 0)
                status = follow(found, data, objects, known, compute, table);
            for (Py_ssize_t i = 0; status == 0 && i < PyList_GET_SIZE(found); i++) {
                PyObject *target = PyList_GET_ITEM(found, i);
                int text = PyUnicode_CheckExact(target);
                PyObject *into = text ? first : parent;
                int has = PyDict_Contains(into, target);
                if (has < 0)
                    status = -1;
                else if (!has) {
                    PyObject *pair = PyTuple_Pack(2, node, text ? Py_True : how_pointer);
                    status = pair == NULL || PyDict_SetItem(into, target, pair) < 0 ||
                                     (!text && PyList_Append(queue, target) < 0)
                                 ? -1
                                 : 0;
                    Py_XDECREF(pair);
                }
            }
        }
        Py_XDECREF(count);
        Py_XDECREF(unresolved);
        Py_XDECREF(imports);
        Py_XDECREF(calls);
        Py_XDECREF(data);
        if (status < 0)
            goto failed;
    }
#undef READ_LONG
    Py_DECREF(objects);
    Py_DECREF(found);
    Py_DECREF(make);
    Py_DECREF(compute);
    if (summaries != NULL)
        PyBuffer_Release(&code);
    return Py_BuildValue("(NLLii)", first, walked, instructions, indirect, bound);
failed:
    if (summaries != NULL)
        PyBuffer_Release(&code);
    Py_XDECREF(first);
    Py_XDECREF(objects);
    Py_XDECREF(found);
    Py_XDECREF(make);
    Py_XDECREF(compute);
    return NULL;
}

/* text(handle, code, offset, address) -> (mnemonic, operands) of the instruction at
 * code[offset:], as capstone prints it, or None where capstone cannot decode it */
static PyObject *text(PyObject *self, PyObject *args) {
    unsigned long long handle, address;
    Py_buffer code;
    Py_ssize_t offset;
    if (!PyArg_ParseTuple(args, "Ky*nK", &handle, &code, &offset, &address))
        return NULL;
    if (check_init() < 0 || offset < 0 || offset > code.len) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "offset outside the code");
        PyBuffer_Release(&code);
        return NULL;
    }
    void *insn = NULL;
    size_t decoded = cs_disasm_p((size_t)handle, (const uint8_t *)code.buf + offset,
                                 (size_t)(code.len - offset), address, 1, &insn);
    PyBuffer_Release(&code);
    if (decoded == 0)
        Py_RETURN_NONE;
    PyObject *result = Py_BuildValue("(ss)", (const char *)insn + mnemonic_at,
                                     (const char *)insn + ops_at);
    cs_free_p(insn, decoded);
    return result;
}

/* compare(handle, code, address, start, end, absolute, stride)
 *   -> (decoded, claimed, mismatches)
 * Checks the tables against capstone: with stride 0 along code as capstone decodes it
 * (one byte on where it cannot), else at each multiple of `stride`, each slot alone.
 * `decoded` counts the instructions capstone decoded, `claimed` those the tables
 * decoded; `mismatches` lists
 * (offset, (length, class, target) of the tables, (length, class, target) of capstone,
 * length 0 where it cannot decode). Targets are 0 where the class has none. */
static PyObject *compare(PyObject *self, PyObject *args) {
    unsigned long long handle, address, start, end;
    Py_buffer code;
    Py_ssize_t stride;
    int absolute;
    if (!PyArg_ParseTuple(args, "Ky*KKKpn", &handle, &code, &address, &start, &end, &absolute,
                          &stride))
        return NULL;
    PyObject *mismatches = check_init() < 0 || stride < 0 ? NULL : PyList_New(0);
    if (mismatches == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "negative stride");
    size_t decoded = 0, claimed = 0, total = (size_t)code.len;
    const uint8_t *bytes = code.buf;
    for (size_t position = 0; mismatches != NULL && position < total;) {
        size_t avail = stride ? (size_t)stride : total - position;
        if (avail > total - position)
            avail = total - position;
        size_t fast_length = 0, cs_length = 0;
        uint64_t fast_target = 0, cs_target = 0;
        int error = 0;
        int fast = fast_classify(bytes + position, avail, address + position, start, end,
                                 absolute, &fast_length, &fast_target);
        absolutes numbers = {0};
        int slow = capstone_classify((size_t)handle, bytes + position, avail,
                                     address + position, start, end,
                                     absolute ? &numbers : NULL, &cs_length,
                                     &cs_target, &error);
        if (slow == FALLBACK)
            cs_length = 0;
        else
            decoded++;
        if (fast != FALLBACK) {
            claimed++;
            if (fast > MOVE)
                fast_target = 0;
            if (slow == FALLBACK || slow > MOVE)
                cs_target = 0;
            if (fast != slow || fast_length != cs_length || fast_target != cs_target) {
                PyObject *item = Py_BuildValue("(n(nik)(nik))", (Py_ssize_t)position,
                                               (Py_ssize_t)fast_length, fast,
                                               (unsigned long long)fast_target,
                                               (Py_ssize_t)cs_length, slow,
                                               (unsigned long long)cs_target);
                if (item == NULL || PyList_Append(mismatches, item) < 0)
                    Py_CLEAR(mismatches);
                Py_XDECREF(item);
            }
        }
        position += stride ? (size_t)stride : cs_length ? cs_length : 1;
    }
    PyBuffer_Release(&code);
    if (mismatches == NULL)
        return NULL;
    return Py_BuildValue("(nnN)", (Py_ssize_t)decoded, (Py_ssize_t)claimed, mismatches);
}

/* identifiers(data) -> the list of callgraph._IDENTIFIER's matches in `data`, as str:
 * a letter or underscore, then 2 to 127 letters, digits or underscores, right before a
 * NUL, and not right after a printable character other than a space (0x21-0x7e). The
 * regular expression's search: leftmost, then on from the end of each match. */
static int word_start(uint8_t c) { return c == '_' || (unsigned)((c | 0x20) - 'a') < 26u; }
static int word_byte(uint8_t c) { return word_start(c) || (unsigned)(c - '0') < 10u; }

static PyObject *identifiers(PyObject *self, PyObject *args) {
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*", &data))
        return NULL;
    const uint8_t *bytes = data.buf;
    Py_ssize_t size = data.len, at = 0;
    PyObject *found = PyList_New(0);
    while (found != NULL && at < size) {
        /* a match starts at `at` if the byte before is not 0x21-0x7e and a run of word
         * bytes from `at`, starting with a letter or `_`, is 3-128 long and ends at a NUL;
         * the regex, failing at `at`, tries `at + 1` */
        if (word_start(bytes[at]) && (at == 0 || bytes[at - 1] < 0x21 || bytes[at - 1] > 0x7e)) {
            Py_ssize_t end = at + 1;
            while (end < size && end - at < 128 && word_byte(bytes[end]))
                end++;
            if (end - at >= 3 && end < size && bytes[end] == 0) {
                PyObject *text = PyUnicode_DecodeASCII((const char *)bytes + at, end - at, NULL);
                if (text == NULL || PyList_Append(found, text) < 0)
                    Py_CLEAR(found);
                Py_XDECREF(text);
                at = end;
                continue;
            }
        }
        at++;
    }
    PyBuffer_Release(&data);
    return found;
}

/* registers() -> the names of `registers`, in order */
static PyObject *names(PyObject *self, PyObject *args) {
    PyObject *result = PyTuple_New(REGISTERS);
    for (size_t i = 0; result != NULL && i < REGISTERS; i++) {
        PyObject *name = PyUnicode_FromString(registers[i]);
        if (name == NULL)
            Py_CLEAR(result);
        else
            PyTuple_SET_ITEM(result, (Py_ssize_t)i, name);
    }
    return result;
}

/* stats() -> (instructions decoded by the tables, by capstone) since the module loaded */
static PyObject *stats(PyObject *self, PyObject *args) {
    return Py_BuildValue("(KK)", fast_count, capstone_count);
}

/* chains(first, parent, names, name, indirect) -> {import: chain}: CallGraph._walk's
 * chains, each from the root's label through the names of the functions walked (and
 * `indirect` where the walk went through a pointer) to the import. `first` maps an
 * import to (node reaching it, via a pointer); `parent` a node to (its parent or None,
 * how: the root's label for a root); `names` is the graph's name cache, `name(node)` the
 * method that fills it. The imports in sorted order, a node's chain made once. */
static PyObject *node_chain(PyObject *node, PyObject *parent, PyObject *names, PyObject *name,
                            PyObject *indirect) {
    PyObject *steps = PyList_New(0), *current = node;
    while (steps != NULL && current != Py_None) {
        PyObject *entry = PyDict_GetItemWithError(parent, current);
        if (entry == NULL || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_KeyError, "a node without its (parent, how)");
            Py_CLEAR(steps);
            break;
        }
        PyObject *up = PyTuple_GET_ITEM(entry, 0), *how = PyTuple_GET_ITEM(entry, 1);
        if (up == Py_None) {
            if (PyList_Append(steps, how) < 0)
                Py_CLEAR(steps);
        } else {
            PyObject *spelled = PyDict_GetItemWithError(names, current);
            if (spelled != NULL) {
                Py_INCREF(spelled);
            } else if (!PyErr_Occurred()) {
                spelled = PyObject_CallOneArg(name, current);
            }
            int equal = spelled == NULL ? -1 : PyObject_RichCompareBool(how, indirect, Py_EQ);
            if (equal < 0 || PyList_Append(steps, spelled) < 0 ||
                (equal && PyList_Append(steps, indirect) < 0))
                Py_CLEAR(steps);
            Py_XDECREF(spelled);
        }
        current = up;
    }
    if (steps != NULL && PyList_Reverse(steps) < 0)
        Py_CLEAR(steps);
    return steps;
}

static PyObject *chains(PyObject *self, PyObject *args) {
    PyObject *first, *parent, *names, *name, *indirect;
    if (!PyArg_ParseTuple(args, "O!O!O!OU", &PyDict_Type, &first, &PyDict_Type, &parent,
                          &PyDict_Type, &names, &name, &indirect))
        return NULL;
    PyObject *imports = PyDict_Keys(first), *made = PyDict_New(), *result = PyDict_New();
    if (imports == NULL || made == NULL || result == NULL || PyList_Sort(imports) < 0)
        goto failed;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(imports); i++) {
        PyObject *import = PyList_GET_ITEM(imports, i);
        PyObject *reached = PyDict_GetItemWithError(first, import);
        if (reached == NULL || !PyTuple_Check(reached) || PyTuple_GET_SIZE(reached) != 2) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "first maps an import to (node, via)");
            goto failed;
        }
        PyObject *node = PyTuple_GET_ITEM(reached, 0);
        int via = PyObject_IsTrue(PyTuple_GET_ITEM(reached, 1));
        if (via < 0)
            goto failed;
        PyObject *steps = PyDict_GetItemWithError(made, node);
        if (steps == NULL) {
            if (PyErr_Occurred())
                goto failed;
            steps = node_chain(node, parent, names, name, indirect);
            if (steps == NULL || PyDict_SetItem(made, node, steps) < 0) {
                Py_XDECREF(steps);
                goto failed;
            }
            Py_DECREF(steps); /* `made` holds it */
        }
        Py_ssize_t count = PyList_GET_SIZE(steps);
        PyObject *chain = PyTuple_New(count + via + 1);
        if (chain == NULL)
            goto failed;
        for (Py_ssize_t k = 0; k < count; k++)
            PyTuple_SET_ITEM(chain, k, Py_NewRef(PyList_GET_ITEM(steps, k)));
        if (via)
            PyTuple_SET_ITEM(chain, count, Py_NewRef(indirect));
        PyTuple_SET_ITEM(chain, count + via, Py_NewRef(import));
        int failed = PyDict_SetItem(result, import, chain) < 0;
        Py_DECREF(chain);
        if (failed)
            goto failed;
    }
    Py_DECREF(imports);
    Py_DECREF(made);
    return result;
failed:
    Py_XDECREF(imports);
    Py_XDECREF(made);
    Py_XDECREF(result);
    return NULL;
}

static PyMethodDef methods[] = {
    {"init", init, METH_VARARGS, "Set capstone's cs_disasm, cs_free, cs_errno and layout."},
    {"scan", scan, METH_VARARGS, "Decode a run of x86-64 code and list what matters."},
    {"text", text, METH_VARARGS, "Capstone's (mnemonic, operands) of one instruction."},
    {"context", make_context, METH_VARARGS, "A call graph's tables, for `settle`."},
    {"settle", settle, METH_VARARGS, "Do what the walker does with a run of events."},
    {"objects", make_objects, METH_VARARGS, "A call graph's data objects, for `pointed`."},
    {"pointed", pointed, METH_VARARGS, "What data objects point to, data to data."},
    {"walk", walk, METH_VARARGS, "A call graph's breadth-first walk, its loop."},
    {"chains", chains, METH_VARARGS, "A walk's chains, root to import (CallGraph._walk)."},
    {"summary", make_summary, METH_VARARGS, "A call graph's tables, for `function`."},
    {"function", one_function, METH_VARARGS, "One function's summary, where no read is needed."},
    {"compare", compare, METH_VARARGS, "Check the decoding tables against capstone."},
    {"registers", names, METH_NOARGS, "The registers a MOVE event names, in order."},
    {"stats", stats, METH_NOARGS, "Instructions decoded by the tables and by capstone."},
    {"identifiers", identifiers, METH_VARARGS, "callgraph._IDENTIFIER's matches in bytes."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_x86scan", "x86-64 decoding sorted for the call-graph walker",
    -1, methods,
};

PyMODINIT_FUNC PyInit__x86scan(void) { return PyModule_Create(&module); }
