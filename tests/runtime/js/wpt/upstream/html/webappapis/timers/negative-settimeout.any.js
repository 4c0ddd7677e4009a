setup({ single_test: true });
setTimeout(done, -100);
setTimeout(assert_unreached, 10);
