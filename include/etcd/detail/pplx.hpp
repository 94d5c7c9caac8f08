// etcd/detail/pplx.hpp -- the task type that etcd::Client returns (part of the etcd-sd
// compatibility headers for etcd-cpp-apiv3; see docs/compat.md).
//
// etcd-cpp-apiv3 returns cpprestsdk's `pplx::task<T>`. Its users call `.get()` straight after
// each call (26 of the 30 code bases we read), sometimes `.wait()` or `.then(...)`, and name the
// type `pplx::task<etcd::Response>`. This is a small, *eager* stand-in with that surface:
//
//   - the work runs when the call is made (etcd-sd's calls are blocking and bounded by the
//     connect/request timeouts), and the task holds its result or its exception;
//   - get() returns the result or rethrows the exception; wait() returns task_status::completed;
//   - then(f) runs f at once, with the result (value-based continuation) or with the task
//     itself (task-based continuation, `f(pplx::task<T>)`), and returns a task of what f
//     returns (a returned task is unwrapped, as in pplx). A value-based continuation is skipped
//     when the task holds an exception, which passes on to the returned task.
//
// There is no thread pool and nothing runs in the background: a call that is never
// `.get()`-ed has still been made (leaserevoke(id) without .get() revokes).
//
// One exception, the *pending* task (made only by the one-shot Client::watch()): it is
// completed later, from an etcd-sd callback thread, when the first change arrives. Until
// then is_done() is false, get()/wait() block, and then(f) returns a pending task at once;
// f runs, on the thread that completes the task, once it is complete. A pending task owns
// what completes it (the watch): when the last copy of it (and of the tasks then() made
// from it) is destroyed, that is cancelled.
//
// Not provided: cancellation tokens, task_completion_event, when_all/when_any, schedulers.
// A program that also includes cpprestsdk's own <pplx/pplxtasks.h> cannot use these headers
// (both define pplx::task).

#ifndef ETCD_SD_COMPAT_PPLX_HPP
#define ETCD_SD_COMPAT_PPLX_HPP

#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace pplx {

enum task_status { not_complete, completed, canceled };

// Thrown by get()/wait() of a default-constructed (empty) task.
class invalid_operation : public std::logic_error {
public:
    explicit invalid_operation(const std::string &what) : std::logic_error(what) {}
    explicit invalid_operation(const char *what) : std::logic_error(what) {}
};

// Thrown by get() of a cancelled task (never produced here; declared for code that catches it).
class task_canceled : public std::exception {
public:
    const char *what() const noexcept override { return "pplx::task_canceled"; }
};

template <typename T>
class task;

namespace details {

// What a pending task waits on (null in the eager tasks: those are complete when made).
struct waiter {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    std::vector<std::function<void()>> continuations;  // run once done, outside the lock
    std::shared_ptr<void> owned;  // what completes the task (a watch); released with it

    bool is_done() {
        std::lock_guard<std::mutex> lock(mutex);
        return done;
    }
    void wait() {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [this] { return done; });
    }
    // Runs `f` once done: now (returns false) or later, on the completing thread (true).
    bool defer(std::function<void()> f) {
        std::lock_guard<std::mutex> lock(mutex);
        if (done) {
            return false;
        }
        continuations.push_back(std::move(f));
        return true;
    }
};

template <typename T>
struct state {
    std::exception_ptr error;
    T value{};
    std::unique_ptr<waiter> pending;
};

template <>
struct state<void> {
    std::exception_ptr error;
    std::unique_ptr<waiter> pending;
};

// Completes a pending task: stores the result (the first one only), wakes get()/wait(), runs
// the continuations. Holds the task weakly: a task nobody holds any more is not kept alive.
template <typename T>
class completer {
public:
    completer() = default;
    explicit completer(std::weak_ptr<state<T>> s) : s_(std::move(s)) {}

    // False when the task was already complete or is gone.
    template <typename... V>
    bool set_value(V &&...value) {
        return finish([&](state<T> &st) { assign(st, std::forward<V>(value)...); });
    }
    bool set_exception(std::exception_ptr e) {
        return finish([&](state<T> &st) { st.error = std::move(e); });
    }
    bool is_done() const {
        auto s = s_.lock();
        return s == nullptr || s->pending == nullptr || s->pending->is_done();
    }

private:
    template <typename U, typename V>
    static void assign(U &st, V &&v) {
        st.value = std::forward<V>(v);
    }
    template <typename U>
    static void assign(U &) {}

    template <typename F>
    bool finish(F &&store) {
        std::shared_ptr<state<T>> s = s_.lock();
        if (s == nullptr || s->pending == nullptr) {
            return false;
        }
        std::vector<std::function<void()>> run;
        {
            std::lock_guard<std::mutex> lock(s->pending->mutex);
            if (s->pending->done) {
                return false;
            }
            store(*s);
            s->pending->done = true;
            run.swap(s->pending->continuations);
        }
        s->pending->cv.notify_all();
        for (auto &f : run) {
            f();
        }
        return true;  // `s` may be the last reference: the task (and what it owns) ends here
    }

    std::weak_ptr<state<T>> s_;
};

// Completes `done` with what the complete task `r` holds: its value, or its exception.
template <typename Task, typename U>
void complete_from(Task r, completer<U> &done) {
    try {
        if constexpr (std::is_void<U>::value) {
            r.get();
            done.set_value();
        } else {
            done.set_value(r.get());
        }
    } catch (...) {
        done.set_exception(std::current_exception());
    }
}

template <typename T>
struct is_task : std::false_type {};
template <typename T>
struct is_task<task<T>> : std::true_type {};

// The task type a continuation returning R yields: task<R>, or R itself when R is a task.
template <typename R>
struct unwrap {
    using type = task<R>;
};
template <typename R>
struct unwrap<task<R>> {
    using type = task<R>;
};

// Runs f() and stores what it returns (or throws) in a task.
template <typename R, typename F>
task<R> run_to_task(F &&f);

}  // namespace details

template <typename T>
class task {
public:
    using result_type = T;

    // An empty task: get() and wait() throw invalid_operation.
    task() = default;

    // Runs `f` now (eagerly) and holds its result or its exception.
    template <typename F,
              typename = std::enable_if_t<!std::is_same<std::decay_t<F>, task>::value &&
                                          std::is_invocable_r<T, F &>::value>>
    explicit task(F f) : task(details::run_to_task<T>(f)) {}

    task(const task &) = default;
    task(task &&) noexcept = default;
    task &operator=(const task &) = default;
    task &operator=(task &&) noexcept = default;

    // The result; rethrows the exception the work ended with. A pending task: waits first.
    T get() const {
        check();
        if (s_->pending) {
            s_->pending->wait();
        }
        if (s_->error) {
            std::rethrow_exception(s_->error);
        }
        return s_->value;
    }

    // Completed (an eager task ran when it was made; a pending one is waited for); rethrows
    // its exception, as pplx's wait() does.
    task_status wait() const {
        check();
        if (s_->pending) {
            s_->pending->wait();
        }
        if (s_->error) {
            std::rethrow_exception(s_->error);
        }
        return completed;
    }

    bool is_done() const {
        return s_ != nullptr && (s_->pending == nullptr || s_->pending->is_done());
    }

    // Continuation: f(T) or f(task<T>); see the top of this file.
    template <typename F>
    auto then(F &&f) const {
        check();
        if (s_->pending && !s_->pending->is_done()) {
            return then_later(std::forward<F>(f));
        }
        return then_now(std::forward<F>(f));
    }

    // (internal) A pending task (see the top of this file), the completer that completes it,
    // and `owned`, what the task keeps until it is destroyed.
    static task make_pending(details::completer<T> *out) {
        task t;
        t.s_ = std::make_shared<details::state<T>>();
        t.s_->pending = std::make_unique<details::waiter>();
        *out = details::completer<T>(t.s_);
        return t;
    }
    void own(std::shared_ptr<void> owned) const {
        if (s_ && s_->pending) {
            std::lock_guard<std::mutex> lock(s_->pending->mutex);
            s_->pending->owned = std::move(owned);
        }
    }

private:
    // then() of a pending task: a pending task completed by `f`, run when this one is done.
    // The new task keeps this one alive (and what it owns); this one holds it weakly.
    template <typename F>
    auto then_later(F &&f) const {
        using R = std::conditional_t<std::is_invocable<F &, T>::value,
                                     std::invoke_result<F &, T>, std::invoke_result<F &, task<T>>>;
        using Out = typename details::unwrap<typename R::type>::type;
        using U = typename Out::result_type;
        details::completer<U> done;
        Out out = Out::make_pending(&done);
        out.own(s_);
        std::weak_ptr<details::state<T>> self = s_;
        auto fn = std::make_shared<std::decay_t<F>>(std::forward<F>(f));
        s_->pending->defer([self, fn, done]() mutable {
            std::shared_ptr<details::state<T>> s = self.lock();
            if (s == nullptr) {
                return;
            }
            task<T> me;
            me.s_ = s;
            details::complete_from(me.then_now(*fn), done);
        });
        return out;
    }

public:
    // (internal) then() of a complete task: runs f now.
    template <typename F>
    auto then_now(F &&f) const {
        if constexpr (std::is_invocable<F &, T>::value) {
            using R = std::invoke_result_t<F &, T>;
            using Out = typename details::unwrap<R>::type;
            if (s_->error) {
                return Out::from_error(s_->error);
            }
            return details::run_to_task<typename Out::result_type>(
                [&]() -> R { return f(T(s_->value)); });
        } else {
            static_assert(std::is_invocable<F &, task<T>>::value,
                          "then(): the continuation must take T or pplx::task<T>");
            using R = std::invoke_result_t<F &, task<T>>;
            using Out = typename details::unwrap<R>::type;
            return details::run_to_task<typename Out::result_type>(
                [&]() -> R { return f(*this); });
        }
    }

    // (internal) a task holding `value` / the exception `e`.
    static task from_value(T value) {
        task t;
        t.s_ = std::make_shared<details::state<T>>();
        t.s_->value = std::move(value);
        return t;
    }
    static task from_error(std::exception_ptr e) {
        task t;
        t.s_ = std::make_shared<details::state<T>>();
        t.s_->error = std::move(e);
        return t;
    }

private:
    void check() const {
        if (!s_) {
            throw invalid_operation("pplx::task: get() or wait() on a default-constructed task");
        }
    }

    std::shared_ptr<details::state<T>> s_;
};

template <>
class task<void> {
public:
    using result_type = void;

    task() = default;

    template <typename F,
              typename = std::enable_if_t<!std::is_same<std::decay_t<F>, task>::value &&
                                          std::is_invocable<F &>::value>>
    explicit task(F f) : task(details::run_to_task<void>(f)) {}

    task(const task &) = default;
    task(task &&) noexcept = default;
    task &operator=(const task &) = default;
    task &operator=(task &&) noexcept = default;

    void get() const {
        check();
        if (s_->pending) {
            s_->pending->wait();
        }
        if (s_->error) {
            std::rethrow_exception(s_->error);
        }
    }

    task_status wait() const {
        get();
        return completed;
    }

    bool is_done() const {
        return s_ != nullptr && (s_->pending == nullptr || s_->pending->is_done());
    }

    template <typename F>
    auto then(F &&f) const {
        check();
        if (s_->pending && !s_->pending->is_done()) {
            return then_later(std::forward<F>(f));
        }
        return then_now(std::forward<F>(f));
    }

    // (internal) see task<T>::make_pending and own.
    static task make_pending(details::completer<void> *out) {
        task t;
        t.s_ = std::make_shared<details::state<void>>();
        t.s_->pending = std::make_unique<details::waiter>();
        *out = details::completer<void>(t.s_);
        return t;
    }
    void own(std::shared_ptr<void> owned) const {
        if (s_ && s_->pending) {
            std::lock_guard<std::mutex> lock(s_->pending->mutex);
            s_->pending->owned = std::move(owned);
        }
    }

private:
    // As task<T>::then_later.
    template <typename F>
    auto then_later(F &&f) const {
        using R = std::conditional_t<std::is_invocable<F &>::value, std::invoke_result<F &>,
                                     std::invoke_result<F &, task<void>>>;
        using Out = typename details::unwrap<typename R::type>::type;
        using U = typename Out::result_type;
        details::completer<U> done;
        Out out = Out::make_pending(&done);
        out.own(s_);
        std::weak_ptr<details::state<void>> self = s_;
        auto fn = std::make_shared<std::decay_t<F>>(std::forward<F>(f));
        s_->pending->defer([self, fn, done]() mutable {
            std::shared_ptr<details::state<void>> s = self.lock();
            if (s == nullptr) {
                return;
            }
            task<void> me;
            me.s_ = s;
            details::complete_from(me.then_now(*fn), done);
        });
        return out;
    }

public:
    // (internal) then() of a complete task: runs f now.
    template <typename F>
    auto then_now(F &&f) const {
        if constexpr (std::is_invocable<F &>::value) {
            using R = std::invoke_result_t<F &>;
            using Out = typename details::unwrap<R>::type;
            if (s_->error) {
                return Out::from_error(s_->error);
            }
            return details::run_to_task<typename Out::result_type>([&]() -> R { return f(); });
        } else {
            static_assert(std::is_invocable<F &, task<void>>::value,
                          "then(): the continuation must take no argument or pplx::task<void>");
            using R = std::invoke_result_t<F &, task<void>>;
            using Out = typename details::unwrap<R>::type;
            return details::run_to_task<typename Out::result_type>(
                [&]() -> R { return f(*this); });
        }
    }

    static task from_value() {
        task t;
        t.s_ = std::make_shared<details::state<void>>();
        return t;
    }
    static task from_error(std::exception_ptr e) {
        task t;
        t.s_ = std::make_shared<details::state<void>>();
        t.s_->error = std::move(e);
        return t;
    }

private:
    void check() const {
        if (!s_) {
            throw invalid_operation("pplx::task: get() or wait() on a default-constructed task");
        }
    }

    std::shared_ptr<details::state<void>> s_;
};

namespace details {

template <typename R, typename F>
task<R> run_to_task(F &&f) {
    using Ret = std::invoke_result_t<F &>;
    try {
        if constexpr (is_task<Ret>::value) {
            Ret inner = f();  // a continuation that returned a task: unwrap it
            if constexpr (std::is_void<R>::value) {
                inner.get();
                return task<R>::from_value();
            } else {
                return task<R>::from_value(inner.get());
            }
        } else if constexpr (std::is_void<R>::value) {
            f();
            return task<R>::from_value();
        } else {
            return task<R>::from_value(f());
        }
    } catch (...) {
        return task<R>::from_error(std::current_exception());
    }
}

}  // namespace details

// A completed task holding `value`.
template <typename T>
task<std::decay_t<T>> task_from_result(T &&value) {
    return task<std::decay_t<T>>::from_value(std::forward<T>(value));
}
inline task<void> task_from_result() { return task<void>::from_value(); }

// A completed task holding the exception `e`.
template <typename T, typename E>
task<T> task_from_exception(E e) {
    return task<T>::from_error(std::make_exception_ptr(std::move(e)));
}

// Runs `f` now and returns a task of its result.
template <typename F>
auto create_task(F f) {
    using R = std::invoke_result_t<F &>;
    using Out = typename details::unwrap<R>::type;
    return details::run_to_task<typename Out::result_type>(f);
}

}  // namespace pplx

#endif  // ETCD_SD_COMPAT_PPLX_HPP
