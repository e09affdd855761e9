// harness_fiber.h: fibers, the execution contexts the simulated CUDA threads run on.
//
// A fiber is a stack plus the saved registers of the code running on it. Switching from one
// fiber to another saves the callee-saved registers and the stack pointer of the current one
// and loads those of the other: a function call that returns on a different stack. Nothing is
// preemptive; a fiber runs until it switches away itself.
//
// Two implementations of the switch:
//   - x86-64: twelve instructions (below), ~10 ns; the default there.
//   - anywhere else, or with -DCUDA_HARNESS_UCONTEXT: POSIX getcontext/makecontext/
//     swapcontext, which also saves the signal mask with a system call per switch (~1 µs).
// AddressSanitizer is told about every switch (it must know which stack is current, or it
// reports false stack overflows), and valgrind is told where the stacks are when its
// header is installed.
#pragma once

#include <cstdint>
#include <cstring>
#include <csignal>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness_util.h"

#if !defined(__x86_64__) || defined(CUDA_HARNESS_UCONTEXT)
#define CUDA_HARNESS_USE_UCONTEXT 1
#include <fenv.h>
#include <ucontext.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define CUDA_HARNESS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDA_HARNESS_ASAN 1
#endif
#endif
#ifdef CUDA_HARNESS_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CUDA_HARNESS_VALGRIND 1
#endif

CUDA_HARNESS_UNTRACED_BEGIN

namespace cuda_harness {

// ----------------------------------------------------------------------------
// stacks: mmap'ed, with an inaccessible guard region below (stacks grow down), so that an
// overflow is a segmentation fault at once instead of a silent overwrite of another stack.
// 64 KiB of guard: a frame with a large local array jumps further than one page (unless
// built with -fstack-clash-protection, which touches every page of a large frame).

constexpr size_t kGuardBytes = 64 * 1024;

struct Stack {
    char* lo = nullptr;  // lowest usable address
    size_t size = 0;     // usable bytes
    size_t color = 0;    // bytes left unused at the top: a fiber starts this far below it
#ifdef CUDA_HARNESS_VALGRIND
    unsigned valgrind_id = 0;
#endif
};

inline size_t page_size() {
    static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return size;
}

// `color` (stack_color) is added to the size and left unused at the top. Stacks are mapped a
// multiple of 64 KiB apart, so the tops of all stacks would fall in the same few cache sets,
// and the frames of the threads of a block waiting at a barrier would evict each other at
// every switch; a different color for each stack spreads them over the sets (a block
// reduction runs about 25% faster).
inline Stack stack_allocate(size_t size, size_t color) {
    size_t page = page_size();
    size = (size + color + page - 1) / page * page;
    // MAP_NORESERVE: only the pages a thread touches are ever backed by memory
    void* p = mmap(nullptr, kGuardBytes + size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
        fatal("lower CUDA_HARNESS_STACK_KB or the threads per block", "cannot map a %zu-byte thread stack", size);
    }
    mprotect(p, kGuardBytes, PROT_NONE);
    Stack s;
    s.lo = static_cast<char*>(p) + kGuardBytes;
    s.size = size;
    s.color = color;
#ifdef CUDA_HARNESS_VALGRIND
    s.valgrind_id = VALGRIND_STACK_REGISTER(s.lo, s.lo + s.size);
#endif
    return s;
}

// The color of the i-th of a set of stacks: 64 offsets, one cache line apart.
inline size_t stack_color(size_t i) { return i % 64 * 64; }

inline void stack_free(Stack& s) {
    if (s.lo == nullptr) { return; }
#ifdef CUDA_HARNESS_VALGRIND
    VALGRIND_STACK_DEREGISTER(s.valgrind_id);
#endif
    munmap(s.lo - kGuardBytes, kGuardBytes + s.size);
    s = Stack{};
}

// Whether a faulting address lies in the guard region of stack s.
inline bool in_guard(const Stack& s, const void* address) {
    const char* a = static_cast<const char*>(address);
    return s.lo != nullptr && a < s.lo && a >= s.lo - kGuardBytes;
}

// The stack of the calling OS thread, which is where the scheduler of a block runs (slow
// for the main thread: glibc reads /proc/self/maps).
inline Stack current_thread_stack() {
    Stack s;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void* lo = nullptr;
        size_t size = 0;
        pthread_attr_getstack(&attr, &lo, &size);
        pthread_attr_destroy(&attr);
        s.lo = static_cast<char*>(lo);
        s.size = size;
    }
    return s;
}

// ----------------------------------------------------------------------------
// the floating-point state a fiber starts with: each fiber has its own (rounding mode,
// exception masks and flags), switched with it

struct FpState {
#ifdef CUDA_HARNESS_USE_UCONTEXT
    fenv_t env;
#else
    uint32_t mxcsr = 0;
    uint16_t x87_control = 0;
#endif
};

// The calling thread's. Taken where fibers are planned (for a block: at its start), not where
// each is set up, which may be on another fiber.
inline FpState fp_state_now() {
    FpState s;
#ifdef CUDA_HARNESS_USE_UCONTEXT
    fegetenv(&s.env);
#else
    asm volatile("stmxcsr %0" : "=m"(s.mxcsr));
    asm volatile("fnstcw %0" : "=m"(s.x87_control));
#endif
    return s;
}

// Makes `s` the calling thread's.
inline void fp_state_set(const FpState& s) {
#ifdef CUDA_HARNESS_USE_UCONTEXT
    fesetenv(&s.env);
#else
    asm volatile("ldmxcsr %0" : : "m"(s.mxcsr));
    asm volatile("fldcw %0" : : "m"(s.x87_control));
#endif
}

// ----------------------------------------------------------------------------
// a context: where a suspended fiber resumes

struct Context {
#ifdef CUDA_HARNESS_USE_UCONTEXT
    ucontext_t uc;
#else
    void* sp = nullptr;  // the saved stack pointer; the registers are saved on the stack
#endif
    const Stack* stack = nullptr;        // the stack it runs on (AddressSanitizer, overflow reports)
    void* asan_fake_stack = nullptr;     // AddressSanitizer's state while suspended
};

#ifndef CUDA_HARNESS_USE_UCONTEXT
// switch_stacks(save, load): pushes the callee-saved registers (and the SSE and x87 control
// words) on the current stack, stores the stack pointer in *save, loads `load` as the stack
// pointer, pops the registers saved there, and returns to the address on top of that stack.
// naked: no compiler prologue; noipa: the compiler may not look inside and assume it keeps
// memory unchanged (it returns on another fiber, which may have changed anything).
#if defined(__clang__)
#define CUDA_HARNESS_NOIPA  // clang does not infer memory effects across a naked function
#else
#define CUDA_HARNESS_NOIPA __attribute__((noipa))
#endif
__attribute__((naked, noinline)) CUDA_HARNESS_NOIPA inline void switch_stacks(void** /*save: rdi*/, void* /*load: rsi*/) {
    asm(R"(
        pushq %rbp
        pushq %rbx
        pushq %r12
        pushq %r13
        pushq %r14
        pushq %r15
        subq $8, %rsp
        stmxcsr (%rsp)
        fnstcw 4(%rsp)
        movq %rsp, (%rdi)
        movq %rsi, %rsp
        ldmxcsr (%rsp)
        fldcw 4(%rsp)
        addq $8, %rsp
        popq %r15
        popq %r14
        popq %r13
        popq %r12
        popq %rbx
        popq %rbp
        ret
    )");
}
#endif

// Prepares `c` to start `entry` on `stack`, with floating-point state `fp`, at its first
// switch. entry must never return: a fiber ends by switching away for good.
inline void context_init(Context* c, const Stack* stack, void (*entry)(), const FpState& fp) {
    c->stack = stack;
    c->asan_fake_stack = nullptr;
#ifdef CUDA_HARNESS_ASAN
    ASAN_UNPOISON_MEMORY_REGION(stack->lo, stack->size);  // a fiber abandoned mid-way left poison
#endif
#ifdef CUDA_HARNESS_USE_UCONTEXT
    // getcontext takes the floating-point state from the caller: `fp` for that moment
    fenv_t caller;
    fegetenv(&caller);
    fesetenv(&fp.env);
    getcontext(&c->uc);
    fesetenv(&caller);
    c->uc.uc_stack.ss_sp = stack->lo;
    c->uc.uc_stack.ss_size = stack->size - stack->color;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, entry, 0);
#else
    // The new stack looks as if switch_stacks had saved it: control words, six registers,
    // then the address `ret` jumps to. Below that a zero return address for entry itself,
    // so that entry starts with the stack alignment the ABI promises after a call.
    uintptr_t top = reinterpret_cast<uintptr_t>(stack->lo + stack->size - stack->color) & ~uintptr_t{15};
    uint64_t* sp = reinterpret_cast<uint64_t*>(top);
    *--sp = 0;
    *--sp = reinterpret_cast<uint64_t>(entry);
    for (int i = 0; i < 6; i++) { *--sp = 0; }  // rbp, rbx, r12-r15
    --sp;
    memcpy(reinterpret_cast<char*>(sp), &fp.mxcsr, 4);
    memcpy(reinterpret_cast<char*>(sp) + 4, &fp.x87_control, 2);
    c->sp = sp;
#endif
}

// Suspends the calling fiber into `from` and resumes `to`. `from_finished`: the calling
// fiber will never be resumed (AddressSanitizer may drop its state).
inline void context_switch(Context* from, Context* to, bool from_finished) {
#ifdef CUDA_HARNESS_ASAN
    __sanitizer_start_switch_fiber(from_finished ? nullptr : &from->asan_fake_stack, to->stack->lo, to->stack->size);
#else
    (void)from_finished;
#endif
#ifdef CUDA_HARNESS_USE_UCONTEXT
    swapcontext(&from->uc, &to->uc);
#else
    switch_stacks(&from->sp, to->sp);
#endif
#ifdef CUDA_HARNESS_ASAN
    __sanitizer_finish_switch_fiber(from->asan_fake_stack, nullptr, nullptr);
#endif
}

// The first thing a fiber's entry function calls: completes the switch that started it.
inline void context_started() {
#ifdef CUDA_HARNESS_ASAN
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
}

}  // namespace cuda_harness

CUDA_HARNESS_UNTRACED_END
